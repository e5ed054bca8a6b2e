"""The temporal window POS and CHROM normalise over."""

from __future__ import annotations

import math

POS_WINDOW_S = 1.6
"""POS/CHROM temporal window (Wang et al. 2017: 32 frames at 20 fps)."""


def window_len(fs: float, n: int) -> int:
    """Frames in one window at ``fs``, for a trace of ``n`` frames."""
    return max(2, min(n, math.ceil(POS_WINDOW_S * fs)))
