"""Benchmark: probe + thumbnail + H.264 preview of a lossless lab recording.

Generates (once, cached in the temp dir) a 640x480 30 fps FFV1 AVI of ffmpeg's
``testsrc2`` the way labs record with OpenCV (``bgr0`` pixels; ``--noise N`` adds
sensor-like temporal noise, which makes lossless decoding much slower), then
times the three preprocessing steps together and prints one JSON line:
``preprocess_vs_duration_ratio`` = seconds spent / seconds of video (goal ≤ 0.25).

    .venv/bin/python bench/media.py            # 60 s recording
    .venv/bin/python bench/media.py --quick    # 10 s recording
    .venv/bin/python bench/media.py --seconds 30 --runs 3   # median of 3 runs
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from lib import media
from lib.media.decoding import ffmpeg_exe
from lib.media.derivatives import PREVIEW_CRF, PREVIEW_PRESET

WIDTH, HEIGHT, FPS = 640, 480, 30
QUICK_SECONDS = 10
FULL_SECONDS = 60


def recording(seconds: int, pix_fmt: str, noise: int) -> Path:
    """The cached FFV1 AVI test recording, generated on first use."""
    cache = Path(tempfile.gettempdir()) / "pulsevault-bench"
    cache.mkdir(exist_ok=True)
    path = cache / f"ffv1_{WIDTH}x{HEIGHT}_{FPS}fps_{seconds}s_{pix_fmt}_noise{noise}.avi"
    if not path.exists():
        partial = path.with_suffix(".part.avi")
        source = f"testsrc2=s={WIDTH}x{HEIGHT}:r={FPS}:d={seconds}"
        if noise:
            source += f",noise=alls={noise}:allf=t"
        subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source,
             "-c:v", "ffv1", "-pix_fmt", pix_fmt, str(partial)],
            check=True,
        )
        partial.replace(path)
    return path


def _cpu_s() -> float:
    """CPU seconds used by this process and its finished children (ffmpeg)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_once(path: Path, workdir: Path) -> dict[str, float]:
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    video = media.probe(path)
    t1 = time.perf_counter()
    media.make_thumbnail(path, workdir / "thumb.jpg")
    t2 = time.perf_counter()
    media.make_preview(path, workdir / "preview.mp4")
    t3 = time.perf_counter()
    total, cpu = t3 - t0, _cpu_s() - cpu0
    return {
        "preprocess_vs_duration_ratio": round(total / video.duration_s, 4),
        "total_s": round(total, 3),
        "probe_s": round(t1 - t0, 3),
        "thumbnail_s": round(t2 - t1, 3),
        "preview_s": round(t3 - t2, 3),
        "cpu_s": round(cpu, 3),
        # Load-independent: the ratio an otherwise idle machine would see, using every core.
        "cpu_s_per_core_vs_duration": round(cpu / (os.cpu_count() or 1) / video.duration_s, 4),
        "duration_s": video.duration_s,
        "source_bytes": path.stat().st_size,
        "preview_bytes": (workdir / "preview.mp4").stat().st_size,
        "thumbnail_bytes": (workdir / "thumb.jpg").stat().st_size,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"a {QUICK_SECONDS} s recording")
    parser.add_argument("--seconds", type=int, help="recording length in seconds")
    parser.add_argument("--runs", type=int, default=1, help="report the median run (by ratio)")
    parser.add_argument("--pix-fmt", default="bgr0", help="FFV1 pixel format (OpenCV writes bgr0)")
    parser.add_argument("--noise", type=int, default=0,
                        help="temporal sensor-like noise strength (ffmpeg noise filter); 0 = clean testsrc2")
    args = parser.parse_args(argv)
    seconds = args.seconds or (QUICK_SECONDS if args.quick else FULL_SECONDS)
    path = recording(seconds, args.pix_fmt, args.noise)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_once(path, Path(tmp)) for _ in range(max(1, args.runs))]
    ratios = [run["preprocess_vs_duration_ratio"] for run in runs]
    # The breakdown comes from the median run; the headline is the median ratio.
    result = sorted(runs, key=lambda run: run["preprocess_vs_duration_ratio"])[(len(runs) - 1) // 2]
    result |= {
        "preprocess_vs_duration_ratio": round(statistics.median(ratios), 4),
        "runs": len(runs),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "pix_fmt": args.pix_fmt,
        "noise": args.noise,
        "preset": PREVIEW_PRESET,
        "crf": PREVIEW_CRF,
        "cpus": os.cpu_count(),
        "load_1min": round(os.getloadavg()[0], 2),
        "goal": 0.25,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
