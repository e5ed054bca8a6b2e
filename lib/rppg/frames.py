"""One pass over a video: per-frame timestamps, mean skin colour and exposure, nothing more.

``extract_rgb`` streams the video once; ``cv2.mean`` on views of the skin patches gives mean R, G, B per
frame. When no face is held (pre-cropped datasets hold a forehead or cheek patch and no face), the
skin-coloured, unclipped pixels of the whole frame are measured instead (``SkinRegion``), and the trace
says which frames those were. Only per-frame scalars are kept, so memory does not grow with the pixels
of a long video.
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
SKIN_WIDTH = 80
"""Without a face, skin pixels are sought on a copy this wide (INTER_AREA: each pixel a mean of many)."""
SKIN_YCRCB = ((0, 133, 77), (255, 173, 127))
"""Skin chrominance in YCrCb (Chai & Ngan 1999): Cr 133–173, Cb 77–127, at any brightness."""
MIN_SKIN_FRACTION = 0.02
"""Fewer skin-coloured pixels than this share of the frame: nothing to measure in that frame."""


@dataclass(frozen=True)
class RgbTrace:
    """Per-frame scalars from one pass over a video. Arrays have one entry per decoded frame."""

    t: np.ndarray = field(repr=False)  # container timestamps of the frames, seconds
    rgb: np.ndarray = field(repr=False)  # (n, 3) mean R, G, B of the skin region; NaN where none measured
    face_found: np.ndarray = field(repr=False)  # bool: the face's skin patches (or the given ROI) were measured
    box_centre: np.ndarray = field(repr=False)  # (n, 2) detected face centre, px; NaN if not detected then
    box_width: np.ndarray = field(repr=False)  # detected face width, px; NaN where the detector did not run
    clipped_low: np.ndarray = field(repr=False)  # fraction of region pixels at black, sampled frames only
    clipped_high: np.ndarray = field(repr=False)  # fraction at white, sampled frames only
    nominal_fps: float = 0.0  # what the container claims
    fourcc: str = ""
    width: int = 0
    height: int = 0
    # bool: no face, so skin-coloured pixels of the whole frame were measured; empty if that never ran
    skin_found: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, bool))

    @property
    def frames(self) -> int:
        return len(self.t)

    @property
    def measured(self) -> np.ndarray:
        """Frames whose skin colour was measured, from the face or from skin pixels without one."""
        return self.face_found | self.skin_found if len(self.skin_found) else self.face_found


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
    # FFmpeg decodes on threads of its own: as many as OpenCV may use, so a batch worker given one core
    # (lib.jobs.engine sets one) decodes on one instead of spreading over every core of the machine.
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, cv2.getNumThreads()])
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
    skin = None if roi is not None else SkinRegion(width, height)
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
        rgb, clipped, from_skin = _measure(frame, patches, skin, i % EXPOSURE_EVERY == 0)
        columns.add(cap.get(cv2.CAP_PROP_POS_MSEC), rgb, clipped, from_skin, seen)
        if progress is not None and (i + 1) % report_every == 0:
            progress(min(0.99, (i + 1) / total))
    if columns.frames == 0:
        raise AnalysisError("The recording has no decodable frames.")
    return columns.trace(
        nominal_fps=fps, fourcc=fourcc_text(cap.get(cv2.CAP_PROP_FOURCC) or 0), width=width, height=height
    )


_NAN3 = (math.nan, math.nan, math.nan)
Rgb = tuple[float, float, float]
Clipped = tuple[float, float]


def _measure(
    frame: np.ndarray, patches: list[Box], skin: SkinRegion | None, exposure: bool
) -> tuple[Rgb | None, Clipped | None, bool]:
    """(mean R, G, B or None, clipped fractions if ``exposure`` asks, whether skin pixels stood in)."""
    if patches:
        return _mean_rgb(frame, patches), _clipped(frame, patches) if exposure else None, False
    if skin is None:
        return None, None, False
    rgb, clipped = skin.measure(frame, exposure)
    return rgb, clipped, rgb is not None


class SkinRegion:
    """No face held: the skin-coloured, unclipped pixels of a small copy of the whole frame.

    The mask is remade every frame: a mask held and refreshed on a schedule would put a step into the
    trace at the refresh rate, which lies in the heart-rate band.
    """

    def __init__(self, width: int, height: int) -> None:
        scale = min(1.0, SKIN_WIDTH / max(1, width))
        self.size = (max(1, round(width * scale)), max(1, round(height * scale)))
        self.min_pixels = max(1, int(MIN_SKIN_FRACTION * self.size[0] * self.size[1]))

    def measure(self, frame: np.ndarray, exposure: bool) -> tuple[Rgb | None, Clipped | None]:
        """(mean R, G, B, or None when too little skin; clipped fractions of the frame if asked)."""
        small = frame
        if (frame.shape[1], frame.shape[0]) != self.size:
            small = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        clipped = _clipped(small, [(0, 0, self.size[0], self.size[1])]) if exposure else None
        unclipped = cv2.inRange(small, (CLIP_LOW + 1,) * 3, (CLIP_HIGH - 1,) * 3)
        skin = cv2.inRange(cv2.cvtColor(small, cv2.COLOR_BGR2YCrCb), *SKIN_YCRCB)
        mask = cv2.bitwise_and(skin, unclipped)
        if cv2.countNonZero(mask) < self.min_pixels:
            return None, clipped
        b, g, r, _ = cv2.mean(small, mask)
        return (r, g, b), clipped


class _Columns:
    """The per-frame scalars as they are read, in compact arrays (no Python object per frame)."""

    def __init__(self) -> None:
        self.t_ms, self.means, self.found, self.skin = array("d"), array("d"), array("b"), array("b")
        self.centre, self.box_w, self.low, self.high = array("d"), array("d"), array("d"), array("d")

    @property
    def frames(self) -> int:
        return len(self.t_ms)

    def add(self, t_ms: float, rgb: Rgb | None, clipped: Clipped | None, from_skin: bool,
            seen: np.ndarray | None) -> None:
        """One frame: its timestamp, the skin colour measured, its exposure and the raw detection ``seen``."""
        self.means.extend(_NAN3 if rgb is None else rgb)
        self.found.append(1 if rgb is not None and not from_skin else 0)
        self.skin.append(1 if from_skin else 0)
        if clipped is not None:
            self.low.append(clipped[0])
            self.high.append(clipped[1])
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
            skin_found=np.frombuffer(self.skin, dtype=np.int8).astype(bool),
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
