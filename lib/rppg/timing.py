"""When the frames were taken: frame rate and its stability, and the measured span on a uniform grid."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lib.rppg.frames import RgbTrace
from lib.rppg.spectrum import MIN_ANALYSABLE_S


@dataclass(frozen=True)
class FrameTiming:
    """The frames' timestamps cleaned, and what they say about the frame rate."""

    t: np.ndarray = field(repr=False)  # cleaned timestamps, seconds from the first frame
    fps: float  # from the median frame interval
    jitter_pct: float  # coefficient of variation of the frame intervals
    duration_s: float
    from_container: bool  # False: timestamps were unusable and fps came from the header


def frame_timing(t: np.ndarray, nominal_fps: float) -> FrameTiming:
    """Frame rate and its stability from the container's timestamps (header fps if they are unusable)."""
    n = len(t)
    t = np.asarray(t, dtype=np.float64)
    dt = np.diff(t)
    if n >= 3 and np.all(np.isfinite(t)) and np.all(dt > 0):
        step = float(np.median(dt))
        jitter = float(np.std(dt) / step * 100.0)
        return FrameTiming(t - t[0], 1.0 / step, jitter, float(t[-1] - t[0] + step), True)
    fps = nominal_fps if nominal_fps > 0 else 30.0
    return FrameTiming(np.arange(n) / fps, fps, 0.0, n / fps, False)


def usable_span(trace: RgbTrace, timing: FrameTiming) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The stretch from first to last measured frame on a uniform grid; frames without skin interpolated."""
    fps = timing.fps
    found = np.flatnonzero(trace.measured & np.all(np.isfinite(trace.rgb), axis=1))
    if len(found) < 2:
        return None, None
    t = timing.t[found]
    rgb = trace.rgb[found]
    if t[-1] - t[0] < MIN_ANALYSABLE_S:
        return None, None
    # Resampling onto a uniform grid fixes variable frame rates and fills gaps where the face was lost.
    grid = t[0] + np.arange(math.floor((t[-1] - t[0]) * fps) + 1) / fps
    uniform = np.column_stack([np.interp(grid, t, rgb[:, c]) for c in range(3)])
    return grid, uniform
