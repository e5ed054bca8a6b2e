"""Where the skin is: Haar face detection, tracking between detections, and the skin patches measured.

OpenCV's Haar frontal-face cascade runs on a small grey copy of every few frames (contrast-equalised by
CLAHE for a second look when the plain copy shows no face); between detections the box glides towards
the latest detection (an exponential moving average), and a lost face is held for a bounded time. The
skin region is the forehead and both cheeks inside the box.

Why Haar: it ships inside opencv-python-headless. BlazeFace finds every Monk skin-tone shade of the
synthetic face at a third of Haar's cost, but the only PyPI wheels carrying it (open-rppg, a
tensorflow-based port) pull in jax/keras or tensorflow and a second OpenCV build (about 1.3 GB); no wheel
ships YuNet's model for ``cv2.FaceDetectorYN``. Equalisation lifts Haar on dark skin of that face (Monk 7
at half exposure: 50% → 100% of frames; Monk 8: 13% → 37%; Monk 9–10 stay missed), and frames without a
face fall back to skin pixels (``frames.SkinRegion``).
"""

from __future__ import annotations

import math
import threading

import cv2
import numpy as np

from lib.errors import AnalysisError

Box = tuple[int, int, int, int]
"""A rectangle in pixels: x, y, width, height."""

DETECT_WIDTH = 160
"""Faces are searched on a grey copy this wide: Haar cost grows with pixels, the box needs little detail."""
DETECT_EVERY_S = 0.5
"""Run the detector twice a second; the box glides in between ..."""
STEADY_FRACTION, STEADY_SLOWDOWN = 0.04, 2
"""... and half as often while consecutive detections move less than this many face widths."""
LOCKED_FACE_PX = 32
"""Once a face is held, re-detect it at about this width (the cascade's window is 20 px) near where it was."""
LOCK_MARGIN = 0.35
"""... searching this many face widths around the last box ..."""
LOCK_SIZE_RANGE = 1.3
"""... for faces up to this factor smaller or larger."""
GLIDE_TAU_S = 0.2
"""Time constant of the box's glide towards the latest detection (smooths Haar jitter)."""
STILL_FRACTION = 0.02
"""The measured region only moves once the smoothed box is this many widths (and > 1 px) away."""
MAX_HOLD_S = 1.5
"""Keep using the last box this long after the detector stops finding the face."""
CLAHE_CLIP, CLAHE_TILES = 2.0, (4, 4)
"""Contrast-limited histogram equalisation of the grey copy: Haar features are brightness differences,
faint on dark skin in dim light."""
_CASCADE_FILE = "haarcascade_frontalface_alt2.xml"  # fewer misses and false hits than _default
# Skin patches as (x, y, w, h) fractions of the Haar box: forehead, left cheek, right cheek.
_SKIN_PATCHES = ((0.30, 0.10, 0.40, 0.14), (0.17, 0.56, 0.18, 0.16), (0.65, 0.56, 0.18, 0.16))


class FaceTracker:
    """Haar detection every few frames; the box glides towards the latest detection in between.

    Searching for a face scans a grey copy of the whole frame DETECT_WIDTH wide. Once a face is held, the
    detector only looks in a margin around it, scaled so the face is LOCKED_FACE_PX wide and at sizes near
    the current one: several times cheaper, and it cannot jump to a face in the background.
    """

    _local = threading.local()  # detectMultiScale is not thread-safe: one cascade per thread

    def __init__(self, width: int, fps: float, every: int | None) -> None:
        self.scale = min(1.0, DETECT_WIDTH / max(1, width))
        self.every = every or max(1, round(fps * DETECT_EVERY_S))
        self.glide = 1.0 - math.exp(-1.0 / (GLIDE_TAU_S * fps))
        self.hold = max(1, round(MAX_HOLD_S * fps))
        self.box: np.ndarray | None = None  # the smoothed box, float x, y, w, h
        self.target: np.ndarray | None = None
        self.shown: Box | None = None  # the integer region actually measured
        self.detected: np.ndarray | None = None  # this frame's raw detection, if the detector ran and hit
        self.previous: np.ndarray | None = None  # the last raw detection
        self.next_run = 0
        self.last_seen = -(10**9)
        self.cascade = self._thread_cascade()
        self.clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=CLAHE_TILES)

    @classmethod
    def _thread_cascade(cls) -> cv2.CascadeClassifier:
        cascade = getattr(cls._local, "cascade", None)
        if cascade is None:
            cascade = cv2.CascadeClassifier(cv2.data.haarcascades + _CASCADE_FILE)
            if cascade.empty():
                raise AnalysisError("OpenCV's face detector is missing from this installation.")
            cls._local.cascade = cascade
        return cascade

    def update(self, frame: np.ndarray, index: int) -> Box | None:
        self.detected = None
        if index >= self.next_run:
            found = None if self.target is None else self._follow(frame, self.target)
            if found is None:  # not held yet, or it moved out of the search margin
                found = self._search(frame)
            steady = found is not None and self.previous is not None and not _moved(self.previous, found)
            self.next_run = index + self.every * (STEADY_SLOWDOWN if steady else 1)
            self.detected = self.previous = found
            if found is not None:
                self._retarget(found)
                self.last_seen = index
        if self.target is None or index - self.last_seen > self.hold:
            self.box = self.target = self.shown = None
            return None
        assert self.box is not None
        self.box += self.glide * (self.target - self.box)
        x, y, w, h = self.box.round().astype(int).tolist()
        # Hysteresis: a region flickering by a pixel between frames puts shading edges into the trace.
        shown = self.shown
        if shown is None or max(abs(x - shown[0]), abs(y - shown[1]), abs(w - shown[2])) > max(
            1.0, STILL_FRACTION * w
        ):
            self.shown = (x, y, w, h)
        return self.shown

    def _search(self, frame: np.ndarray) -> np.ndarray | None:
        faces = self._detect(frame, self.scale, (24, 24), (0, 0))
        if faces is None:
            return None
        return faces[np.argmax(faces[:, 2])]  # the biggest face is the subject

    def _follow(self, frame: np.ndarray, target: np.ndarray) -> np.ndarray | None:
        x, y, w, h = target
        margin = LOCK_MARGIN * w
        height, width = frame.shape[:2]
        x0, y0 = int(max(0, x - margin)), int(max(0, y - margin))
        x1, y1 = int(min(width, x + w + margin)), int(min(height, y + h + margin))
        step = max(1, round(w / LOCKED_FACE_PX))  # an integer factor takes OpenCV's fast INTER_AREA path
        face = w / step
        lo, hi = max(20, int(face / LOCK_SIZE_RANGE)), int(face * LOCK_SIZE_RANGE) + 1
        faces = self._detect(frame[y0:y1, x0:x1], 1.0 / step, (lo, lo), (hi, hi), scale_factor=1.15)
        if faces is None:
            return None
        faces[:, :2] += (x0, y0)
        centres = faces[:, :2] + faces[:, 2:] / 2
        return faces[np.argmin(np.hypot(*(centres - (x + w / 2, y + h / 2)).T))]

    def _detect(
        self, image: np.ndarray, scale: float, min_size: tuple, max_size: tuple, scale_factor: float = 1.1
    ) -> np.ndarray | None:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)  # grey first: a third of the pixels to resize
        if scale != 1.0:
            interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=interpolation)
        faces = self.cascade.detectMultiScale(
            grey, scaleFactor=scale_factor, minNeighbors=3, minSize=min_size, maxSize=max_size
        )
        if len(faces) == 0:
            # Only then equalise: on a face the plain image finds, equalising makes Haar jitter, which costs
            # more detections (measured +20% time on the speed clip); a dark face pays for the second look.
            faces = self.cascade.detectMultiScale(
                self.clahe.apply(grey), scaleFactor=scale_factor, minNeighbors=3, minSize=min_size,
                maxSize=max_size,
            )
        if len(faces) == 0:
            return None
        return np.asarray(faces, dtype=np.float64) / scale

    def _retarget(self, found: np.ndarray) -> None:
        if self.target is None or self.box is None or _moved(self.target, found, 0.5):
            self.box, self.target = found.copy(), found.copy()
        else:
            self.target = 0.5 * (self.target + found)  # halves detector jitter; the glide does the rest


def _moved(a: np.ndarray, b: np.ndarray, widths: float = STEADY_FRACTION) -> bool:
    return bool(np.hypot(a[0] - b[0], a[1] - b[1]) > widths * a[2])


def skin_patches(box: Box, shape: tuple[int, ...], whole: bool) -> list[Box]:
    """Skin patches clipped to the frame; a user-given ROI is used whole."""
    x, y, w, h = box
    rects = [(x, y, w, h)] if whole else [
        (x + int(fx * w), y + int(fy * h), max(1, int(fw * w)), max(1, int(fh * h)))
        for fx, fy, fw, fh in _SKIN_PATCHES
    ]
    height, width = shape[:2]
    clipped = []
    for rx, ry, rw, rh in rects:
        x0, y0 = max(0, rx), max(0, ry)
        x1, y1 = min(width, rx + rw), min(height, ry + rh)
        if x1 > x0 and y1 > y0:
            clipped.append((x0, y0, x1 - x0, y1 - y0))
    return clipped
