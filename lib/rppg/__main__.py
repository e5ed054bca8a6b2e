"""``python -m lib.rppg FILE... [--method M] [--band LO HI] [--json]``: the app's quick look from a script.

Prints one line per file: with ``--json`` a JSON object with at least ``file`` (the path as given),
``hr_bpm`` (null when none), ``snr_db``, ``flags`` (their codes) and ``methods`` (every method's ``hr_bpm`` and
``snr_db`` from the same decode; ``--method`` picks the headline); otherwise a readable summary. A file
that cannot be analysed prints its error (``error`` in JSON) and the exit status is 1; others go on.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from lib.errors import PulseVaultError
from lib.rppg import METHODS, AnalysisSummary, analyse
from lib.rppg.spectrum import RESTING_BAND_HZ, check_band


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        band = check_band(args.band) if args.band else RESTING_BAND_HZ
    except PulseVaultError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = False
    for name in args.files:
        try:
            summary = analyse(name, method=args.method, band=band)
        except PulseVaultError as exc:
            failed = True
            _print_error(name, str(exc), as_json=args.json)
            continue
        print(json.dumps(_record(name, summary)) if args.json else _line(name, summary), flush=True)
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib.rppg", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="FILE", help="video recordings to analyse")
    parser.add_argument("--method", default="POS", type=str.upper, choices=METHODS, help="pulse method (POS)")
    parser.add_argument("--band", nargs=2, type=float, metavar=("LO", "HI"),
                        help=f"heart-rate band in Hz (default {RESTING_BAND_HZ[0]} {RESTING_BAND_HZ[1]}, at rest; "
                             "0.7 4 for exercise)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def _record(name: str, summary: AnalysisSummary) -> dict[str, Any]:
    data = summary.to_json()
    return {
        "file": name,
        "method": summary.method,
        "hr_bpm": data["hr_bpm"],
        "snr_db": data["snr_db"],
        "flags": [flag.code for flag in summary.flags],
        "fps": data["fps"],
        "duration_s": data["duration_s"],
        "frames_analysed": summary.frames_analysed,
        "seconds_taken": data["seconds_taken"],
        "methods": {name: {"hr_bpm": m["hr_bpm"], "snr_db": m["snr_db"]} for name, m in data["methods"].items()},
    }


def _line(name: str, summary: AnalysisSummary) -> str:
    hr = "no heart rate" if summary.hr_bpm is None else f"{summary.hr_bpm:.1f} bpm"
    snr = "" if summary.snr_db is None else f", SNR {summary.snr_db:.1f} dB"
    flags = ", ".join(flag.code for flag in summary.flags) or "none"
    others = "; ".join(f"{m.method} {'no heart rate' if m.hr_bpm is None else f'{m.hr_bpm:.1f} bpm'}"
                       for m in summary.methods if m.method != summary.method)
    return f"{name}: {hr} ({summary.method}{snr}); {others}; flags: {flags}"


def _print_error(name: str, message: str, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"file": name, "hr_bpm": None, "snr_db": None, "flags": [], "error": message}),
              flush=True)
    else:
        print(f"{name}: error: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
