"""POS, plane-orthogonal-to-skin.

W. Wang, A. C. den Brinker, S. Stuijk and G. de Haan, "Algorithmic principles of remote PPG",
IEEE Transactions on Biomedical Engineering 64(7), 1479–1491, 2017 (Algorithm 1): 1.6 s windows,
temporal normalisation, projection onto the plane orthogonal to skin tone, alpha tuning, overlap-add.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lib.rppg.methods.window import window_len


def extract(rgb: np.ndarray, fs: float) -> np.ndarray:
    """Plane-orthogonal-to-skin (Wang et al. 2017, Algorithm 1), vectorised over windows in chunks."""
    n = len(rgb)
    length = window_len(fs, n)
    out = np.zeros(n)
    projection = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])
    windows = sliding_window_view(rgb, length, axis=0)  # (n - length + 1, 3, length), a view
    chunk = 2048  # bounds the temporary arrays for hour-long recordings
    for start in range(0, len(windows), chunk):
        win = windows[start : start + chunk]
        cn = win / win.mean(axis=2, keepdims=True)  # temporal normalisation removes illumination level
        s = np.einsum("pc,wcl->wpl", projection, cn)
        s0_std, s1_std = s[:, 0].std(axis=1), s[:, 1].std(axis=1)
        alpha = np.divide(s0_std, s1_std, out=np.zeros_like(s0_std), where=s1_std > 0)
        h = s[:, 0] + alpha[:, None] * s[:, 1]
        h -= h.mean(axis=1, keepdims=True)
        for k in range(length):  # overlap-add: window w covers frames w .. w + length - 1
            out[start + k : start + k + len(h)] += h[:, k]
    return out
