"""What the app makes from a recording: a representative JPEG thumbnail and an H.264 preview proxy."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from lib.errors import PulseVaultError, UnsupportedMedia
from lib.media.containers import display_name
from lib.media.decoding import capture, ffmpeg_exe, first_frame

PREVIEW_MAX_LONG_SIDE = 1280
PREVIEW_MAX_SHORT_SIDE = 720
"""The proxy fits 1280x720 (or 720x1280 for portrait): "at most 720p"."""

PREVIEW_PRESET = "veryfast"
PREVIEW_CRF = 26
"""Tuned with bench/media.py: a quick-look proxy, not an archive copy."""

# --- thumbnail ------------------------------------------------------------------

_THUMBNAIL_SAMPLES = (0.1, 0.2, 0.3, 0.4, 0.5)
"""Where to look, in order: past fade-ins and the subject settling, before the recording
winds down. The first usable frame wins: each seek decodes from the previous keyframe,
which is costly in long-GOP H.264 and in noisy lossless files."""
_MIN_MEAN, _MAX_MEAN, _MIN_STD = 24.0, 235.0, 10.0
_USABLE = 1000.0  # score bonus of a frame that is neither dark, blown out nor flat


def make_thumbnail(path: Path | str, out_path: Path | str, *, max_side: int = 320,
                   name: str | None = None) -> Path:
    """A JPEG of a representative frame (not a black or flat one), at most ``max_side`` px."""
    path, out_path = Path(path), Path(out_path)
    label = display_name(name or path.name)
    with capture(path, label) as cap:
        # The first frame is only the fallback: recordings often open on a black
        # sensor or on the subject still settling in.
        best = first_frame(cap, label)
        best_score = -1.0
        total = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 1)
        for position in dict.fromkeys(int(total * f) for f in _THUMBNAIL_SAMPLES):
            if best_score >= _USABLE:
                break
            cap.set(cv2.CAP_PROP_POS_FRAMES, position)
            ok, frame = cap.read()
            if ok and frame is not None and (score := _frame_score(frame)) > best_score:
                best, best_score = frame, score
    scale = max_side / max(best.shape[:2])
    if scale < 1:
        best = cv2.resize(best, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".jpg", best, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise PulseVaultError(f"The thumbnail of {label} could not be encoded.")
    out_path.write_bytes(encoded.tobytes())
    return out_path


def _frame_score(frame: np.ndarray) -> float:
    """Contrast, preferring mid brightness; black, blown-out or flat frames score below any other."""
    small = cv2.resize(frame, (64, 48), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    mean, std = float(gray.mean()), float(gray.std())
    usable = _MIN_MEAN <= mean <= _MAX_MEAN and std >= _MIN_STD
    return (_USABLE if usable else 0.0) + std * (1 - abs(mean - 128) / 256)


# --- preview proxy --------------------------------------------------------------


def preview_size(width: int, height: int) -> tuple[int, int]:
    """Fit inside 1280x720 (or 720x1280), keep the aspect, even sides (yuv420p needs them)."""
    long_side, short_side = max(width, height), min(width, height)
    scale = min(1.0, PREVIEW_MAX_LONG_SIDE / long_side, PREVIEW_MAX_SHORT_SIDE / short_side)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def make_preview(path: Path | str, out_path: Path | str, *,
                 progress: Callable[[float], None] | None = None, name: str | None = None) -> Path:
    """An H.264 yuv420p MP4 (+faststart, at most 720p, no audio) a browser plays.

    ``progress`` gets the fraction done (0..1) as ffmpeg reports it; if it raises
    (say, the user cancelled), ffmpeg is stopped, the partial file removed and the
    exception propagates.
    """
    path, out_path = Path(path), Path(out_path)
    label = display_name(name or path.name)
    with capture(path, label) as cap:
        fps, frames = cap.get(cv2.CAP_PROP_FPS), cap.get(cv2.CAP_PROP_FRAME_COUNT)
    duration = frames / fps if fps > 0 and frames > 0 else 0.0
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".part")
    try:
        _run_ffmpeg(_preview_command(path, partial), duration, progress, label)
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    return out_path


def _scale_filter() -> str:
    """:func:`preview_size` as an ffmpeg expression: ffmpeg evaluates it on the frames
    after applying any rotation in the file, whose sides OpenCV may report swapped."""
    factor = f"min(1,min({PREVIEW_MAX_LONG_SIDE}/max(iw,ih),{PREVIEW_MAX_SHORT_SIDE}/min(iw,ih)))"
    side = "max(2,trunc(trunc({0}*{1})/2)*2)"
    return (f"scale=w='{side.format('iw', factor)}':h='{side.format('ih', factor)}'"
            ":flags=bilinear:out_range=tv,setsar=1")


def _preview_command(src: Path, dst: Path) -> list[str]:
    return [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y",
        "-i", str(src),
        "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1",
        # out_range=tv: full-range sources (MJPEG) would otherwise come out yuvj420p.
        "-vf", _scale_filter(),
        "-c:v", "libx264", "-preset", PREVIEW_PRESET, "-crf", str(PREVIEW_CRF),
        "-pix_fmt", "yuv420p", "-movflags", "+faststart",
        "-f", "mp4", "-progress", "pipe:1", "-nostats", str(dst),
    ]


def _run_ffmpeg(cmd: list[str], duration: float, progress: Callable[[float], None] | None,
                label: str) -> None:
    # stderr goes to a file, not a pipe: reading only stdout while ffmpeg fills an
    # unread stderr pipe would deadlock.
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True)
        except OSError as exc:
            raise PulseVaultError(f"The preview of {label} could not be made: ffmpeg did not start.") from exc
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                fraction = _progress_fraction(line, duration)
                if progress is not None and fraction is not None:
                    progress(fraction)
            returncode = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if returncode != 0:
            errors.seek(0)
            tail = _stderr_summary(errors.read().decode("utf-8", "replace"))
            raise UnsupportedMedia(f"The preview of {label} could not be made: ffmpeg says {tail}")


def _progress_fraction(line: str, duration: float) -> float | None:
    key, _, value = line.strip().partition("=")
    if key == "progress" and value == "end":
        return 1.0
    if key == "out_time_us" and value.isdigit() and duration > 0:
        return min(1.0, int(value) / 1e6 / duration)
    return None


def _stderr_summary(text: str, lines: int = 3) -> str:
    """The last few ffmpeg error lines, with file paths cut to their base names."""
    tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    summary = " / ".join(re.sub(r"(?:/[^/\s:'\"]+)+/([^/\s:'\"]+)", r"\1", line) for line in tail)
    return (summary[:400] or "an unknown error") + ("" if summary.endswith(".") else ".")
