"""GREEN, the green channel alone.

W. Verkruysse, L. O. Svaasand and J. S. Nelson, "Remote plethysmographic imaging using ambient light",
Optics Express 16(26), 21434–21445, 2008: the green channel carries the strongest plethysmographic signal.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d


def extract(rgb: np.ndarray, fs: float) -> np.ndarray:
    """GREEN (Verkruysse et al. 2008): the green channel relative to its moving mean."""
    g = rgb[:, 1]
    return g / uniform_filter1d(g, max(2, int(fs)), mode="nearest") - 1.0
