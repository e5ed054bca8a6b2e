"""Run every benchmark and print one JSON object with all their figures.

Each script in bench/ prints one JSON line; this runs them one after another
(never in parallel: they would disturb each other's timings on two cores) and
merges the lines. ``--quick`` passes ``--quick`` to each, for a run of a few
minutes on smaller inputs with the same keys.

Usage: python bench/run.py [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

# script -> the keys it must report
BENCHMARKS: dict[str, tuple[str, ...]] = {
    "transfer": ("upload_ratio_vs_boto3", "upload_ratio_vs_boto3_seaweedfs", "upload_ratio_vs_boto3_tuned_seaweedfs",
                 "upload_peak_rss_mb"),
    "rppg": ("hr_mae_bpm", "analysis_vs_decode_ratio"),
    "rppg_real": ("real_hr_mae_bpm", "real_hr_within5_pct", "real_no_hr_pct"),
    "media": ("preprocess_vs_duration_ratio",),
    "files_page": ("files_page_render_s_10k",),
    "usage": ("usage_aggregation_ms_100k",),
    "cold_start": ("cold_start_ratio_vs_bare", "cold_start_s"),
    "direct_upload": ("direct_upload_server_peak_rss_mb", "demo_large_upload_peak_rss_mb"),
    "idle_cpu": ("idle_cpu_pct",),
    "load": ("load_interaction_ratio", "load_rss_after_mb"),
    "export": ("export_zip_ratio_vs_get", "export_peak_rss_mb"),
    "batch": ("batch_overhead_vs_loop", "batch_scaling_2_vs_1"),
}


def run_one(name: str, quick: bool) -> dict:
    cmd = [sys.executable, str(BENCH / f"{name}.py"), *(["--quick"] if quick else [])]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    lines = [line for line in proc.stdout.splitlines() if line.strip().startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"error": f"{name} failed (exit {proc.returncode}): " + " | ".join(tail)}
    figures = json.loads(lines[-1])
    missing = [k for k in BENCHMARKS[name] if k not in figures]
    if missing:
        figures["error"] = f"{name} did not report {', '.join(missing)}"
    figures[f"{name}_bench_s"] = round(elapsed, 1)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs, same keys")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run just these")
    args = parser.parse_args()
    merged: dict = {"quick": args.quick}
    details: dict = {}
    errors = []
    for name in args.only or BENCHMARKS:
        print(f"bench: {name}…", file=sys.stderr, flush=True)
        figures = run_one(name, args.quick)
        if "error" in figures:
            errors.append(figures.pop("error"))
        # The headline keys at the top; everything a script reported under its name
        # (scripts reuse names like "rows" and "runs", which must not overwrite each other).
        merged.update({key: figures[key] for key in BENCHMARKS[name] if key in figures})
        details[name] = figures
    merged["details"] = details
    if errors:
        merged["errors"] = errors
    print(json.dumps(merged))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
