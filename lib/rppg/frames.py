"""One pass over a video: per-frame timestamps, mean skin colour and exposure, nothing more.

``extract_rgb`` streams the video once; ``cv2.mean`` on views of the skin patches gives mean R, G, B per
frame. Only per-frame scalars are kept, so memory does not grow with the pixels of a long video.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lib.errors import AnalysisError, NotFound, ValidationError
from lib.media.codecs import fourcc_text
from lib.rppg.face import Box, FaceTracker, skin_patches

ProgressFn = Callable[[float], None]
"""Told the fraction done, 0..1."""

EXPOSURE_EVERY = 5
"""Clipped-pixel fractions are sampled every this many frames: exposure changes slowly."""
CLIP_LOW, CLIP_HIGH = 5, 250
"""A pixel counts as clipped when any channel is at or beyond these 8-bit levels."""


@dataclass(frozen=True)
class RgbTrace:
    """Per-frame scalars from one pass over a video. Arrays have one entry per decoded frame."""

    t: np.ndarray = field(repr=False)  # container timestamps of the frames, seconds
    rgb: np.ndarray = field(repr=False)  # (n, 3) mean R, G, B of the skin region; NaN where no face
    face_found: np.ndarray = field(repr=False)  # bool: a skin region was measured in this frame
    box_centre: np.ndarray = field(repr=False)  # (n, 2) detected face centre, px; NaN if not detected then
    box_width: np.ndarray = field(repr=False)  # detected face width, px; NaN where the detector did not run
    clipped_low: np.ndarray = field(repr=False)  # fraction of region pixels at black, sampled frames only
    clipped_high: np.ndarray = field(repr=False)  # fraction at white, sampled frames only
    nominal_fps: float = 0.0  # what the container claims
    fourcc: str = ""
    width: int = 0
    height: int = 0

    @property
    def frames(self) -> int:
        return len(self.t)


def extract_rgb(
    path: Path | str,
    *,
    roi: Box | None = None,
    progress: ProgressFn | None = None,
    detect_every: int | None = None,
) -> RgbTrace:
    """Mean skin colour per frame. ``roi`` (x, y, w, h in pixels) replaces face detection with a fixed box."""
    path = Path(path)
    if roi is not None:
        if len(roi) != 4 or roi[2] <= 0 or roi[3] <= 0:
            raise ValidationError("A skin region is (x, y, width, height) in pixels, with a positive size.")
        roi = (int(roi[0]), int(roi[1]), int(roi[2]), int(roi[3]))
    if not path.is_file():
        raise NotFound(f"The recording {path.name!r} is not there any more.")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise AnalysisError(f"OpenCV cannot open {path.name!r} for the pulse analysis.")
        return _scan(cap, roi, progress, detect_every)
    finally:
        cap.release()


def _scan(cap: cv2.VideoCapture, roi: Box | None, progress: ProgressFn | None, every: int | None) -> RgbTrace:
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    fps = fps if 1.0 <= fps <= 1000.0 else 30.0
    total = max(1, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    tracker = None if roi is not None else FaceTracker(width, fps, every)
    report_every = max(1, total // 100)
    columns = _Columns()
    box: Box | None = None
    patches: list[Box] = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        i = columns.frames
        new_box = roi if tracker is None else tracker.update(frame, i)
        if new_box is not box:  # the tracker hands back the same tuple while the region stays put
            box = new_box
            patches = skin_patches(box, frame.shape, roi is not None) if box is not None else []
        seen = None if tracker is None else tracker.detected
        columns.add(cap.get(cv2.CAP_PROP_POS_MSEC), frame, patches, seen)
        if progress is not None and (i + 1) % report_every == 0:
            progress(min(0.99, (i + 1) / total))
    if columns.frames == 0:
        raise AnalysisError("The recording has no decodable frames.")
    return columns.trace(
        nominal_fps=fps, fourcc=fourcc_text(cap.get(cv2.CAP_PROP_FOURCC) or 0), width=width, height=height
    )


_NAN3 = (math.nan, math.nan, math.nan)


class _Columns:
    """The per-frame scalars as they are read, in compact arrays (no Python object per frame)."""

    def __init__(self) -> None:
        self.t_ms, self.means, self.found = array("d"), array("d"), array("b")
        self.centre, self.box_w, self.low, self.high = array("d"), array("d"), array("d"), array("d")

    @property
    def frames(self) -> int:
        return len(self.t_ms)

    def add(self, t_ms: float, frame: np.ndarray, patches: list[Box], seen: np.ndarray | None) -> None:
        """One frame: its timestamp, the skin measured in ``patches`` and the raw detection ``seen``."""
        if patches:
            self.means.extend(_mean_rgb(frame, patches))
            self.found.append(1)
            if self.frames % EXPOSURE_EVERY == 0:
                lo, hi = _clipped(frame, patches)
                self.low.append(lo)
                self.high.append(hi)
        else:
            self.means.extend(_NAN3)
            self.found.append(0)
        # Raw detections, not the smoothed box: motion must not be hidden by the smoothing.
        self.centre.extend(_NAN3[:2] if seen is None else (seen[0] + seen[2] / 2, seen[1] + seen[3] / 2))
        self.box_w.append(math.nan if seen is None else seen[2])
        self.t_ms.append(t_ms)  # last: until here ``frames`` is this frame's index

    def trace(self, *, nominal_fps: float, fourcc: str, width: int, height: int) -> RgbTrace:
        return RgbTrace(
            t=np.frombuffer(self.t_ms, dtype=np.float64) / 1000.0,
            rgb=np.frombuffer(self.means, dtype=np.float64).reshape(-1, 3),
            face_found=np.frombuffer(self.found, dtype=np.int8).astype(bool),
            box_centre=np.frombuffer(self.centre, dtype=np.float64).reshape(-1, 2),
            box_width=np.frombuffer(self.box_w, dtype=np.float64),
            clipped_low=np.frombuffer(self.low, dtype=np.float64),
            clipped_high=np.frombuffer(self.high, dtype=np.float64),
            nominal_fps=nominal_fps,
            fourcc=fourcc,
            width=width,
            height=height,
        )


def _mean_rgb(frame: np.ndarray, patches: list[Box]) -> tuple[float, float, float]:
    """Pixel-weighted mean over the patches (views, no copies), returned as R, G, B."""
    b = g = r = 0.0
    area = 0
    for x, y, w, h in patches:
        mb, mg, mr, _ = cv2.mean(frame[y : y + h, x : x + w])
        n = w * h
        b, g, r, area = b + mb * n, g + mg * n, r + mr * n, area + n
    return r / area, g / area, b / area


def _clipped(frame: np.ndarray, patches: list[Box]) -> tuple[float, float]:
    """Fractions of patch pixels with any channel at black or at white."""
    low = high = area = 0
    for x, y, w, h in patches:
        view = frame[y : y + h, x : x + w]
        n = w * h
        low += n - cv2.countNonZero(cv2.inRange(view, (CLIP_LOW + 1,) * 3, (255,) * 3))
        high += n - cv2.countNonZero(cv2.inRange(view, (0,) * 3, (CLIP_HIGH - 1,) * 3))
        area += n
    return low / area, high / area
