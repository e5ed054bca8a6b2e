"""Pulse-extraction methods, one per module with its paper (as rPPG-Toolbox keeps them), and their registry.

Each method turns an (n, 3) R, G, B trace sampled at ``fs`` into a raw pulse wave; ``pulse_signal``
then detrends it and band-passes it to the heart-rate band (Butterworth, forwards and backwards: zero
phase).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import signal as sps

from lib.errors import ValidationError
from lib.rppg.methods import chrom, green, pos
from lib.rppg.spectrum import RESTING_BAND_HZ, Band, bandpass

_EXTRACTORS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "POS": pos.extract,
    "CHROM": chrom.extract,
    "GREEN": green.extract,
}
METHODS = tuple(_EXTRACTORS)
"""Pulse-extraction methods, by the names researchers know them."""


def check_method(method: str) -> str:
    """The registered name for ``method`` (case and spaces ignored); refused with the valid names."""
    name = str(method).strip().upper()
    if name not in METHODS:
        raise ValidationError(f"Unknown pulse method {method!r}; choose one of {', '.join(METHODS)}.")
    return name


def pulse_signal(rgb: np.ndarray, fs: float, method: str = "POS", band: Band = RESTING_BAND_HZ) -> np.ndarray:
    """Pulse wave from an (n, 3) R, G, B trace sampled at ``fs``: detrended, band-passed to ``band``."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 2 or rgb.shape[1] != 3:
        raise ValidationError("The colour trace must have three columns: R, G, B.")
    rgb = np.maximum(rgb, 1e-6)  # an all-black channel must not divide by zero
    name = check_method(method)
    raw = _EXTRACTORS[name](rgb, fs)
    return bandpass(sps.detrend(raw), fs, band)
