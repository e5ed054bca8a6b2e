"""A recording's ground truth, parsed by :mod:`lib.rppg.ground_truth` from whatever format it was stored in,
written in the format an export's layout expects.

- UBFC-rPPG DATASET_2 ``ground_truth.txt``: three whitespace-separated lines, the PPG signal, the heart rate
  at each sample (bpm) and the sample times (s). The format has no start offset (rPPG-Toolbox takes the
  signal to start with the video), so samples from before the first frame are dropped.
- BIDS physiology: ``_physio.tsv.gz`` (one ``cardiac`` column, no header, evenly sampled) and its JSON
  sidecar with ``SamplingFrequency``, ``StartTime`` (the first sample's time from the video's first frame)
  and ``Columns``. Unevenly timed samples are interpolated onto the median rate.
"""

from __future__ import annotations

import gzip
import json

import numpy as np

from lib.errors import ExportRefused
from lib.records import FileRecord
from lib.rppg.ground_truth import GroundTruth, Kind

HR_WINDOW_S = 10.0
"""The heart-rate line of ground_truth.txt: each sample's rate is the spectral estimate over this window
around it (the span rPPG-Toolbox evaluates on by default)."""
HR_STEP_S = 1.0
"""The window moves this far between estimates; samples in between are interpolated."""
BIDS_PULSE_COLUMN = "cardiac"
"""BIDS' name for a PPG column."""
VALUE_FORMAT = "{:.10g}"
"""Ten significant digits: more than any pulse oximeter resolves, exact enough for times at 1 kHz."""


def pulse_waveform(truth: GroundTruth, record: FileRecord) -> GroundTruth | None:
    """The waveform with its times (a rate-less signal spread over its video); None for a mean heart rate."""
    if truth.kind is Kind.MEAN_HR:
        return None
    if truth.fs is not None:
        return truth
    if record.video is None or record.video.duration_s <= 0:
        raise ExportRefused(f"{record.original_name}: its ground truth has no sampling rate and the video's "
                            "duration is unknown, so the samples cannot be timed. Re-analyse the recording.")
    return truth.on_video(record.video.duration_s)


def ubfc_text(wave: GroundTruth, record: FileRecord) -> bytes:
    """UBFC-rPPG DATASET_2 ``ground_truth.txt`` for a waveform (from :func:`pulse_waveform`)."""
    inside = wave.t >= 0.0
    t, values = wave.t[inside], wave.values[inside]
    if len(t) < 2:
        raise ExportRefused(f"{record.original_name}: its ground truth ends before the video starts, so "
                            "UBFC-rPPG's ground_truth.txt would be empty.")
    hr = _hr_per_sample(wave, t)
    if hr is None:
        raise ExportRefused(f"{record.original_name}: its ground truth is too short for a heart rate, which "
                            "UBFC-rPPG's ground_truth.txt carries on its second line.")
    lines = (_line(values), _line(hr), _line(t))
    return ("\n".join(lines) + "\n").encode("ascii")


def _hr_per_sample(wave: GroundTruth, t: np.ndarray) -> np.ndarray | None:
    """The heart rate at each time in ``t``: windowed estimates, interpolated; the whole-signal one where
    no window can be estimated."""
    from lib.rppg.ground_truth.reference import ground_truth_hr  # SciPy: loaded only when a UBFC export is made

    whole = ground_truth_hr(wave, start_s=float(t[0]), end_s=float(t[-1]))
    centres = np.arange(float(t[0]), float(t[-1]) + HR_STEP_S / 2, HR_STEP_S)
    half = HR_WINDOW_S / 2
    rates = [ground_truth_hr(wave, start_s=c - half, end_s=c + half) for c in centres]
    known = [(c, r) for c, r in zip(centres, rates, strict=True) if r is not None]
    if not known:
        return None if whole is None else np.full(len(t), whole)
    xs, ys = zip(*known, strict=True)
    return np.interp(t, np.asarray(xs), np.asarray(ys))


def _line(x: np.ndarray) -> str:
    return " ".join(VALUE_FORMAT.format(float(v)) for v in x)


def bids_physio(wave: GroundTruth) -> tuple[bytes, bytes]:
    """(``_physio.tsv.gz``, ``_physio.json``) for a waveform (from :func:`pulse_waveform`)."""
    assert wave.fs is not None  # pulse_waveform gave it a rate
    count = int(np.floor((wave.t[-1] - wave.t[0]) * wave.fs + 1e-9)) + 1
    grid = wave.t[0] + np.arange(count) / wave.fs
    values = np.interp(grid, wave.t, wave.values)
    table = "".join(VALUE_FORMAT.format(float(v)) + "\n" for v in values).encode("ascii")
    sidecar = {"SamplingFrequency": float(wave.fs), "StartTime": float(wave.t[0]), "Columns": [BIDS_PULSE_COLUMN],
               BIDS_PULSE_COLUMN: {"Description": f"Reference pulse waveform (PPG), from {wave.source}",
                                   "Units": "arbitrary"}}
    # mtime 0: the same ground truth always gives the same bytes, so its checksum is stable.
    return gzip.compress(table, mtime=0), (json.dumps(sidecar, indent=2) + "\n").encode("utf-8")
