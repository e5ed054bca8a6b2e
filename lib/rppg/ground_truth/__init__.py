"""Ground truth: reading a reference pulse file (one loader module per format, as pyVHR keeps one per
dataset), and the reference heart rate over the span the estimate used.

Formats today: UBFC-rPPG ``ground_truth.txt`` (``ubfc``) and a ``time,value`` table (``table``). A loader
gives (t seconds, values); this module checks and normalises them once for every format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import signal as sps

from lib.errors import NotFound, ValidationError
from lib.rppg.ground_truth import table, ubfc
from lib.rppg.spectrum import MIN_ANALYSABLE_S, bandpass, estimate_hr


def load_ground_truth(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """(t seconds, PPG values) from a ``time,value`` CSV (header optional) or a UBFC ``ground_truth.txt``."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"The ground-truth file {path.name!r} is not there.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise ValidationError(f"{path.name!r} is not a readable text file of ground truth.") from exc
    lines = [line for line in text.splitlines() if line.strip()]
    t, values = ubfc.parse(lines) if ubfc.matches(lines) else table.parse(text, path.name)
    t, first = np.unique(t, return_index=True)  # sorted, and a repeated timestamp keeps its first value
    values = values[first]
    if len(t) < 10 or not (np.all(np.isfinite(t)) and np.all(np.isfinite(values))):
        raise ValidationError(f"{path.name!r} holds too few valid time,value samples to be ground truth.")
    if t[0] > 1e5:  # epoch timestamps: make them relative to the recording start
        t = t - t[0]
    if np.median(np.diff(t)) > 0.5:  # no PPG is logged below 2 Hz, so these are milliseconds
        t = t / 1000.0
    return t, values


def ground_truth_hr(t: np.ndarray, values: np.ndarray, *, start_s: float, end_s: float) -> float | None:
    """HR of the reference PPG over [start_s, end_s], with the same band-pass and spectral estimator."""
    inside = (t >= start_s) & (t <= end_s)
    if inside.sum() < 10 or t[inside][-1] - t[inside][0] < MIN_ANALYSABLE_S:
        return None
    ts, vs = t[inside], values[inside]
    fs = 1.0 / float(np.median(np.diff(ts)))
    grid = ts[0] + np.arange(int((ts[-1] - ts[0]) * fs) + 1) / fs
    ppg = bandpass(sps.detrend(np.interp(grid, ts, vs)), fs)
    return estimate_hr(ppg, fs)[0]
