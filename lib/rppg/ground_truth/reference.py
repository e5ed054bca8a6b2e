"""The reference heart rate of a ground truth over the span an estimate used."""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

from lib.rppg.ground_truth.model import GroundTruth, Kind
from lib.rppg.spectrum import MIN_ANALYSABLE_S, RESTING_BAND_HZ, Band, bandpass, estimate_hr


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
