"""CHROM, the chrominance method.

G. de Haan and V. Jeanne, "Robust pulse rate from chrominance-based rPPG", IEEE Transactions on
Biomedical Engineering 60(10), 2878–2886, 2013: chrominance signals X = 3R − 2G and Y = 1.5R + G − 1.5B,
band-passed, combined as X − alpha·Y with alpha tuned per Hann window, overlap-added.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

from lib.rppg.methods.window import window_len
from lib.rppg.spectrum import bandpass


def extract(rgb: np.ndarray, fs: float) -> np.ndarray:
    """CHROM (de Haan & Jeanne 2013): chrominance X/Y with alpha tuned per Hann window, overlap-added."""
    norm = rgb / uniform_filter1d(rgb, window_len(fs, len(rgb)), axis=0, mode="nearest")
    r, g, b = norm.T
    x = bandpass(3.0 * r - 2.0 * g, fs)
    y = bandpass(1.5 * r + g - 1.5 * b, fs)
    length = window_len(fs, len(rgb))
    length += length % 2
    half = length // 2
    hann = np.hanning(length)
    out = np.zeros(len(rgb))
    if len(rgb) < length:
        sy = y.std()
        return x - (x.std() / sy if sy > 0 else 0.0) * y
    starts = list(range(0, len(rgb) - length + 1, half))
    if starts[-1] != len(rgb) - length:
        starts.append(len(rgb) - length)  # one more window so the last frames are not left at zero
    for start in starts:
        xs, ys = x[start : start + length], y[start : start + length]
        sy = ys.std()
        alpha = xs.std() / sy if sy > 0 else 0.0
        out[start : start + length] += (xs - alpha * ys) * hann
    return out
