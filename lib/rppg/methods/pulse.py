"""The pulse wave of a method: its raw output detrended and band-passed to the heart-rate band
(Butterworth, forwards and backwards: zero phase)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import signal as sps

from lib.errors import ValidationError
from lib.rppg.methods import check_method, chrom, green, pos
from lib.rppg.spectrum import RESTING_BAND_HZ, Band, bandpass

EXTRACTORS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "POS": pos.extract,
    "CHROM": chrom.extract,
    "GREEN": green.extract,
}
"""Each method's extractor: an (n, 3) R, G, B trace and its rate in, the raw pulse wave out."""


def pulse_signal(rgb: np.ndarray, fs: float, method: str = "POS", band: Band = RESTING_BAND_HZ) -> np.ndarray:
    """Pulse wave from an (n, 3) R, G, B trace sampled at ``fs``: detrended, band-passed to ``band``."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 2 or rgb.shape[1] != 3:
        raise ValidationError("The colour trace must have three columns: R, G, B.")
    rgb = np.maximum(rgb, 1e-6)  # an all-black channel must not divide by zero
    name = check_method(method)
    raw = EXTRACTORS[name](rgb, fs)
    return bandpass(sps.detrend(raw), fs, band)
