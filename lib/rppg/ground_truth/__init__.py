"""Ground truth for a recording: one loader module per dataset format (as pyVHR keeps one per dataset), all
parsing to one :class:`GroundTruth`, and the reference heart rate over the span the estimate used.

``load_ground_truth`` picks the format from the file's name, then its content:

- ``*_physio.tsv.gz`` / ``*_physio.tsv`` / ``*_physio.json`` → BIDS physiology with its sidecar (``bids``)
- ``*.h5`` / ``*.hdf5`` → COHFACE-style HDF5, ``pulse`` and ``time`` (``hdf5``)
- ``*.json`` → PURE, ``/FullPackage`` packets (``pure``)
- ``*_bvp.csv`` → iBVP (``ibvp``)
- ``*.xmp`` → UBFC-rPPG DATASET_1 ``gtdump.xmp`` (``ubfc``)
- three long whitespace-separated lines → UBFC-rPPG DATASET_2 ``ground_truth.txt`` (``ubfc``)
- one number, or rows of ``name, HR`` → a mean heart rate (``mean_hr``)
- anything else → CSV with a time column or a stated sampling rate (``table``)

Every refusal is a :class:`lib.errors.GroundTruthError` naming the file, line and column; ``check_sync``
compares a reference's span with its video's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import signal as sps

from lib.errors import NotFound
from lib.rppg.ground_truth import bids, hdf5, ibvp, mean_hr, pure, table, ubfc
from lib.rppg.ground_truth.model import GroundTruth, Kind
from lib.rppg.ground_truth.sync import SYNC_TOLERANCE_S, Sync, check_sync
from lib.rppg.ground_truth.text import read_text, rows
from lib.rppg.spectrum import MIN_ANALYSABLE_S, RESTING_BAND_HZ, Band, bandpass, estimate_hr

__all__ = ["SYNC_TOLERANCE_S", "GroundTruth", "Kind", "Sync", "check_sync", "ground_truth_hr",
           "load_ground_truth"]


def load_ground_truth(
    path: Path | str, *, recording: str | None = None, rate_hz: float | None = None
) -> GroundTruth:
    """Parse one ground-truth file.

    ``recording`` (the video's file name) picks the row of a table of mean heart rates; ``rate_hz`` is the
    sampling rate of a signal whose file states none.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"The ground-truth file {path.name!r} is not there.")
    name = path.name.lower()
    if name.endswith(("_physio.tsv.gz", "_physio.tsv")):
        return bids.load(path, bids.sidecar_of(path))
    if name.endswith("_physio.json"):
        return bids.load(bids.table_of(path), path)
    if name.endswith((".h5", ".hdf5")):
        return hdf5.load(path, rate_hz=rate_hz)
    text = read_text(path)
    if name.endswith(".json"):
        return pure.load(path.name, text)
    if name.endswith("_bvp.csv"):
        return ibvp.load(path.name, text, rate_hz=rate_hz)
    if name.endswith(".xmp"):
        return ubfc.load_dataset1(path.name, text)
    if ubfc.looks_like_dataset2(text):
        return ubfc.load_dataset2(path.name, text)
    if mean_hr.looks_like(rows(text)):
        return mean_hr.load(path.name, text, recording=recording)
    return table.load(path.name, text, rate_hz=rate_hz)


def ground_truth_hr(
    truth: GroundTruth, *, start_s: float, end_s: float, band: Band = RESTING_BAND_HZ
) -> float | None:
    """The reference heart rate over [start_s, end_s] (seconds from the video's first frame).

    A mean heart rate is what it says; a waveform goes through the same band-pass and spectral estimator
    as the estimate, over the same span.
    """
    if truth.kind is Kind.MEAN_HR:
        return truth.hr_bpm
    t, values = truth.t, truth.values  # no times until a rate-less signal is put on its video (on_video)
    inside = (t >= start_s) & (t <= end_s)
    if len(t) == 0 or inside.sum() < 10 or t[inside][-1] - t[inside][0] < MIN_ANALYSABLE_S:
        return None
    ts, vs = t[inside], values[inside]
    fs = 1.0 / float(np.median(np.diff(ts)))
    grid = ts[0] + np.arange(int((ts[-1] - ts[0]) * fs) + 1) / fs
    ppg = bandpass(sps.detrend(np.interp(grid, ts, vs)), fs, band)
    return estimate_hr(ppg, fs, band=band)[0]
