"""Quick-look rPPG: a pulse estimate and recording-quality flags for one video.

Pipeline (what rPPG-Toolbox / pyVHR do offline, trimmed to run about as fast as decoding):

1. ``extract_rgb`` streams the video once. OpenCV's Haar frontal-face cascade runs on a small grey copy
   of every few frames; between detections the box glides towards the latest detection (an exponential
   moving average), and a lost face is held for a bounded time. The skin region is the forehead and both
   cheeks inside the box; ``cv2.mean`` on those views gives mean R, G, B per frame. Only per-frame scalars
   are kept, so memory does not grow with the pixels of a long video.
2. ``pulse_signal`` turns the RGB trace into a pulse wave: POS (Wang et al. 2017, 1.6 s windows,
   overlap-add), CHROM (de Haan & Jeanne 2013) or GREEN (Verkruysse et al. 2008); then linear detrend and
   a 0.7–4 Hz Butterworth band-pass run forwards and backwards (zero phase).
3. ``estimate_hr`` takes the Welch spectrum peak in 0.7–4 Hz (42–240 bpm), zero-padded to a 0.1 bpm grid
   and refined by parabolic interpolation, plus an SNR in dB after de Haan & Jeanne 2013: power within
   ±0.1 Hz (±6 bpm) of the peak and of its first harmonic, against all other power in 0.7–4 Hz.
4. ``hr_track`` repeats that on 10 s windows every 1 s for a plot; ``quality_flags`` says in plain words
   what makes a recording doubtful.

``analyse`` strings it all together and returns an :class:`AnalysisSummary` that serialises to the
``analysis`` JSON column. Nothing here imports Streamlit.
"""

from __future__ import annotations

import math
import re
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal as sps
from scipy.ndimage import uniform_filter1d

from lib.errors import AnalysisError, NotFound, ValidationError

METHODS = ("POS", "CHROM", "GREEN")
"""Pulse-extraction methods, by the names researchers know them."""

BAND_HZ = (0.7, 4.0)
"""Plausible heart rates: 42–240 bpm."""
SNR_HALF_WIDTH_HZ = 0.1
"""Half width of the signal bins around the fundamental and first harmonic (±6 bpm, as rPPG-Toolbox)."""
POS_WINDOW_S = 1.6
"""POS/CHROM temporal window (Wang et al. 2017: 32 frames at 20 fps)."""
HR_SEGMENT_S = 20.0
"""Welch segment length for the whole-recording HR; shorter recordings use one segment."""
FREQ_STEP_BPM = 0.1
"""Spectral grid after zero padding, before parabolic refinement."""
TRACK_WINDOW_S = 10.0
TRACK_STEP_S = 1.0
MIN_ANALYSABLE_S = 4.0
"""Below this much usable signal, no heart rate is reported at all."""

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
EXPOSURE_EVERY = 5
"""Clipped-pixel fractions are sampled every this many frames: exposure changes slowly."""
CLIP_LOW, CLIP_HIGH = 5, 250
"""A pixel counts as clipped when any channel is at or beyond these 8-bit levels."""
_CASCADE_FILE = "haarcascade_frontalface_alt2.xml"  # fewer misses and false hits than _default
# Skin patches as (x, y, w, h) fractions of the Haar box: forehead, left cheek, right cheek.
_SKIN_PATCHES = ((0.30, 0.10, 0.40, 0.14), (0.17, 0.56, 0.18, 0.16), (0.65, 0.56, 0.18, 0.16))

# Quality thresholds: (warning, critical). The comparisons' direction is in quality_flags.
FACE_FOUND_PCT = (80.0, 50.0)
FPS_MIN = (20.0, 8.0)
FPS_JITTER_PCT = (10.0, 30.0)
DURATION_MIN_S = (10.0, 5.0)
MOTION_BOX_PER_S = (0.15, 0.50)
CLIPPED_PCT = (5.0, 25.0)
SNR_MIN_DB = (0.0, -6.0)
_LOSSY_FOURCC = {"mp4v", "fmp4", "xvid", "divx", "dx50", "mp42", "mp43", "div3", "avc1", "h264", "x264",
                 "hev1", "hvc1", "hevc", "vp80", "vp90", "vp09", "av01", "mjpg", "wmv2", "wmv3", "flv1",
                 "mpg1", "mpg2", "mp2v"}
_LOSSLESS_FOURCC = {"ffv1", "hfyu", "ffvh", "ulrg", "uly0", "uly2", "ulh0", "lags", "mpng", "png ", "rgba",
                    "bgra", "i420", "yv12", "y800", "dib "}

_CELL_SPLIT = re.compile(r"[,;\t ]+")
Box = tuple[int, int, int, int]
ProgressFn = Callable[[float], None]


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class QualityFlag:
    """One reason to doubt a recording; ``message`` is for the researcher, the rest for tables/filters."""

    code: str
    severity: Severity
    value: float | None
    threshold: float | None
    message: str
    unit: str = ""


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


@dataclass(frozen=True)
class AnalysisSummary:
    """The quick-look result for one recording, as stored in the ``analysis`` JSON column."""

    method: str
    hr_bpm: float | None
    snr_db: float | None
    hr_track: tuple[tuple[float, float], ...]  # (seconds from start, bpm), one per window
    pulse: tuple[float, ...]  # the pulse wave, unit variance, downsampled for plotting
    pulse_fs: float  # samples per second of ``pulse``
    flags: tuple[QualityFlag, ...]
    frames_analysed: int
    seconds_taken: float
    ground_truth_hr_bpm: float | None = None
    hr_error_bpm: float | None = None  # hr_bpm - ground_truth_hr_bpm (signed)
    fps: float | None = None
    duration_s: float | None = None

    @property
    def usable(self) -> bool:
        """A heart rate came out and nothing critical is flagged."""
        return self.hr_bpm is not None and not any(f.severity is Severity.CRITICAL for f in self.flags)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "method": self.method,
            "hr_bpm": _round(self.hr_bpm, 2),
            "snr_db": _round(self.snr_db, 2),
            "hr_track": [[round(t, 2), round(bpm, 2)] for t, bpm in self.hr_track],
            "pulse": [round(v, 4) for v in self.pulse],
            "pulse_fs": round(self.pulse_fs, 4),
            "flags": [
                {"code": f.code, "severity": str(f.severity), "value": _round(f.value, 4),
                 "threshold": f.threshold, "message": f.message, "unit": f.unit}
                for f in self.flags
            ],
            "frames_analysed": self.frames_analysed,
            "seconds_taken": round(self.seconds_taken, 3),
            "ground_truth_hr_bpm": _round(self.ground_truth_hr_bpm, 2),
            "hr_error_bpm": _round(self.hr_error_bpm, 2),
            "fps": _round(self.fps, 3),
            "duration_s": _round(self.duration_s, 3),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnalysisSummary:
        try:
            return cls(
                method=str(data["method"]),
                hr_bpm=_opt_float(data.get("hr_bpm")),
                snr_db=_opt_float(data.get("snr_db")),
                hr_track=tuple((float(t), float(bpm)) for t, bpm in data.get("hr_track", ())),
                pulse=tuple(float(v) for v in data.get("pulse", ())),
                pulse_fs=float(data.get("pulse_fs", 0.0)),
                flags=tuple(
                    QualityFlag(
                        code=str(f["code"]),
                        severity=Severity(f["severity"]),
                        value=_opt_float(f.get("value")),
                        threshold=_opt_float(f.get("threshold")),
                        message=str(f["message"]),
                        unit=str(f.get("unit", "")),
                    )
                    for f in data.get("flags", ())
                ),
                frames_analysed=int(data.get("frames_analysed", 0)),
                seconds_taken=float(data.get("seconds_taken", 0.0)),
                ground_truth_hr_bpm=_opt_float(data.get("ground_truth_hr_bpm")),
                hr_error_bpm=_opt_float(data.get("hr_error_bpm")),
                fps=_opt_float(data.get("fps")),
                duration_s=_opt_float(data.get("duration_s")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AnalysisError(
                f"The saved pulse analysis is unreadable ({exc}); re-analyse the recording."
            ) from exc


# --- the whole thing ------------------------------------------------------------------------------------


def analyse(
    path: Path | str,
    *,
    method: str = "POS",
    progress: ProgressFn | None = None,
    lossless: bool | None = None,
    ground_truth: Path | str | None = None,
    roi: Box | None = None,
) -> AnalysisSummary:
    """Analyse one recording. ``lossless=None`` guesses from the codec tag; ``roi`` skips face detection."""
    started = time.perf_counter()
    method = check_method(method)
    truth = load_ground_truth(ground_truth) if ground_truth is not None else None  # fail before decoding
    trace = extract_rgb(path, roi=roi, progress=_scaled(progress, 0.97))
    if lossless is None:
        lossless = lossless_from_fourcc(trace.fourcc)
    summary = summarise(trace, method=method, lossless=lossless, ground_truth=truth, started=started)
    if progress is not None:
        progress(1.0)
    return summary


def summarise(
    trace: RgbTrace,
    *,
    method: str = "POS",
    lossless: bool | None = None,
    ground_truth: tuple[np.ndarray, np.ndarray] | None = None,
    started: float | None = None,
) -> AnalysisSummary:
    """Everything after decoding: usable from a script on a trace made any other way."""
    started = time.perf_counter() if started is None else started
    method = check_method(method)
    timing = frame_timing(trace.t, trace.nominal_fps)
    t, rgb = _usable_span(trace, timing)
    hr = snr = None
    track: tuple[tuple[float, float], ...] = ()
    pulse = np.zeros(0)
    if t is not None and rgb is not None:
        pulse = pulse_signal(rgb, timing.fps, method)
        hr, snr = estimate_hr(pulse, timing.fps)
        track = tuple((float(t[0] + mid), bpm) for mid, bpm in hr_track(pulse, timing.fps))
    gt_hr = None
    if ground_truth is not None:
        # Same span as the estimate; the ground truth's time 0 is taken to be the video's first frame.
        start, end = (float(t[0]), float(t[-1])) if t is not None else (0.0, timing.duration_s)
        gt_hr = ground_truth_hr(*ground_truth, start_s=start, end_s=end)
    flags = quality_flags(trace, timing=timing, snr_db=snr, lossless=lossless, analysed=t is not None)
    plot, plot_fs = _for_plot(pulse, timing.fps)
    return AnalysisSummary(
        method=method,
        hr_bpm=hr,
        snr_db=snr,
        hr_track=track,
        pulse=plot,
        pulse_fs=plot_fs,
        flags=flags,
        frames_analysed=trace.frames,
        seconds_taken=time.perf_counter() - started,
        ground_truth_hr_bpm=gt_hr,
        hr_error_bpm=None if hr is None or gt_hr is None else hr - gt_hr,
        fps=timing.fps,
        duration_s=timing.duration_s,
    )


def check_method(method: str) -> str:
    name = str(method).strip().upper()
    if name not in METHODS:
        raise ValidationError(f"Unknown pulse method {method!r}; choose one of {', '.join(METHODS)}.")
    return name


# --- decoding: one pass, per-frame scalars ----------------------------------------------------------------


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
    tracker = None if roi is not None else _FaceTracker(width, fps, every)
    report_every = max(1, total // 100)
    t_ms, means, found = array("d"), array("d"), array("b")
    centre, box_w, low, high = array("d"), array("d"), array("d"), array("d")
    nan3 = (math.nan, math.nan, math.nan)
    i = 0
    box: Box | None = None
    patches: list[Box] = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        t_ms.append(cap.get(cv2.CAP_PROP_POS_MSEC))
        new_box = roi if tracker is None else tracker.update(frame, i)
        if new_box is not box:  # the tracker hands back the same tuple while the region stays put
            box = new_box
            patches = _patches(box, frame.shape, roi is not None) if box is not None else []
        if patches:
            means.extend(_mean_rgb(frame, patches))
            found.append(1)
            if i % EXPOSURE_EVERY == 0:
                lo, hi = _clipped(frame, patches)
                low.append(lo)
                high.append(hi)
        else:
            means.extend(nan3)
            found.append(0)
        seen = None if tracker is None else tracker.detected
        # Raw detections, not the smoothed box: motion must not be hidden by the smoothing.
        centre.extend(nan3[:2] if seen is None else (seen[0] + seen[2] / 2, seen[1] + seen[3] / 2))
        box_w.append(math.nan if seen is None else seen[2])
        i += 1
        if progress is not None and i % report_every == 0:
            progress(min(0.99, i / total))
    if i == 0:
        raise AnalysisError("The recording has no decodable frames.")
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
    return RgbTrace(
        t=np.frombuffer(t_ms, dtype=np.float64) / 1000.0,
        rgb=np.frombuffer(means, dtype=np.float64).reshape(-1, 3),
        face_found=np.frombuffer(found, dtype=np.int8).astype(bool),
        box_centre=np.frombuffer(centre, dtype=np.float64).reshape(-1, 2),
        box_width=np.frombuffer(box_w, dtype=np.float64),
        clipped_low=np.frombuffer(low, dtype=np.float64),
        clipped_high=np.frombuffer(high, dtype=np.float64),
        nominal_fps=fps,
        fourcc=fourcc.to_bytes(4, "little").decode("latin-1").strip("\x00").lower() if fourcc > 0 else "",
        width=width,
        height=height,
    )


class _FaceTracker:
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
            return None
        return np.asarray(faces, dtype=np.float64) / scale

    def _retarget(self, found: np.ndarray) -> None:
        if self.target is None or self.box is None or _moved(self.target, found, 0.5):
            self.box, self.target = found.copy(), found.copy()
        else:
            self.target = 0.5 * (self.target + found)  # halves detector jitter; the glide does the rest


def _moved(a: np.ndarray, b: np.ndarray, widths: float = STEADY_FRACTION) -> bool:
    return bool(np.hypot(a[0] - b[0], a[1] - b[1]) > widths * a[2])


def _patches(box: Box, shape: tuple[int, ...], whole: bool) -> list[Box]:
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


# --- timing ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameTiming:
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


def _usable_span(trace: RgbTrace, timing: FrameTiming) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The stretch from first to last measured frame on a uniform grid; frames without a face interpolated."""
    fps = timing.fps
    found = np.flatnonzero(trace.face_found & np.all(np.isfinite(trace.rgb), axis=1))
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


# --- signal ---------------------------------------------------------------------------------------------


def pulse_signal(rgb: np.ndarray, fs: float, method: str = "POS") -> np.ndarray:
    """Pulse wave from an (n, 3) R, G, B trace sampled at ``fs``: detrended, band-passed 0.7–4 Hz."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 2 or rgb.shape[1] != 3:
        raise ValidationError("The colour trace must have three columns: R, G, B.")
    rgb = np.maximum(rgb, 1e-6)  # an all-black channel must not divide by zero
    name = check_method(method)
    raw = {"POS": _pos, "CHROM": _chrom, "GREEN": _green}[name](rgb, fs)
    return bandpass(sps.detrend(raw), fs)


def bandpass(x: np.ndarray, fs: float, band: tuple[float, float] = BAND_HZ) -> np.ndarray:
    low, high = band[0], min(band[1], 0.45 * fs)  # a 10 fps video cannot carry 4 Hz cleanly
    sos = sps.butter(4, [low, high], btype="bandpass", fs=fs, output="sos")
    if len(x) <= 3 * (2 * len(sos) + 1):
        return x - x.mean()
    return sps.sosfiltfilt(sos, x)


def _window_len(fs: float, n: int) -> int:
    return max(2, min(n, math.ceil(POS_WINDOW_S * fs)))


def _pos(rgb: np.ndarray, fs: float) -> np.ndarray:
    """Plane-orthogonal-to-skin (Wang et al. 2017, Algorithm 1), vectorised over windows in chunks."""
    n = len(rgb)
    length = _window_len(fs, n)
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


def _chrom(rgb: np.ndarray, fs: float) -> np.ndarray:
    """CHROM (de Haan & Jeanne 2013): chrominance X/Y with alpha tuned per Hann window, overlap-added."""
    norm = rgb / uniform_filter1d(rgb, _window_len(fs, len(rgb)), axis=0, mode="nearest")
    r, g, b = norm.T
    x = bandpass(3.0 * r - 2.0 * g, fs)
    y = bandpass(1.5 * r + g - 1.5 * b, fs)
    length = _window_len(fs, len(rgb))
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


def _green(rgb: np.ndarray, fs: float) -> np.ndarray:
    """GREEN (Verkruysse et al. 2008): the green channel relative to its moving mean."""
    g = rgb[:, 1]
    return g / uniform_filter1d(g, max(2, int(fs)), mode="nearest") - 1.0


def _welch(x: np.ndarray, fs: float, segment_s: float) -> tuple[np.ndarray, np.ndarray]:
    nperseg = max(8, min(len(x), round(segment_s * fs)))
    nfft = max(nperseg, 1 << math.ceil(math.log2(fs * 60.0 / FREQ_STEP_BPM)))
    return sps.welch(x, fs, window="hann", nperseg=nperseg, noverlap=nperseg // 2, nfft=nfft,
                     detrend="constant")


def estimate_hr(pulse: np.ndarray, fs: float, *, segment_s: float = HR_SEGMENT_S) -> tuple[float, float]:
    """Heart rate (bpm) at the Welch spectral peak in 0.7–4 Hz, and the de Haan SNR (dB) around it."""
    pulse = np.asarray(pulse, dtype=np.float64)
    if len(pulse) < 8 or not np.all(np.isfinite(pulse)):
        raise AnalysisError("Too little signal to estimate a heart rate.")
    freqs, power = _welch(pulse, fs, segment_s)
    return _peak_hr(freqs, power), _snr_db(freqs, power, _peak_hr(freqs, power) / 60.0)


def _peak_hr(freqs: np.ndarray, power: np.ndarray) -> float:
    band = np.flatnonzero((freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1]))
    k = band[np.argmax(power[band])]
    f = freqs[k]
    if band[0] < k < band[-1]:  # parabola through the peak and its neighbours: sub-bin accuracy
        a, b, c = power[k - 1], power[k], power[k + 1]
        denom = a - 2 * b + c
        if denom < 0:
            f += 0.5 * (a - c) / denom * (freqs[1] - freqs[0])
    return float(f * 60.0)


def _snr_db(freqs: np.ndarray, power: np.ndarray, f0: float) -> float:
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    near = (np.abs(freqs - f0) <= SNR_HALF_WIDTH_HZ) | (np.abs(freqs - 2 * f0) <= SNR_HALF_WIDTH_HZ)
    signal_power = float(power[band & near].sum())
    noise_power = float(power[band & ~near].sum())
    if signal_power <= 0:
        return -99.0
    if noise_power <= 0:
        return 99.0
    return 10.0 * math.log10(signal_power / noise_power)


def hr_track(
    pulse: np.ndarray, fs: float, *, window_s: float = TRACK_WINDOW_S, step_s: float = TRACK_STEP_S
) -> tuple[tuple[float, float], ...]:
    """(window centre in seconds from the signal's start, bpm) on sliding windows."""
    n = len(pulse)
    length = min(n, round(window_s * fs))
    step = max(1, round(step_s * fs))
    if length < 8:
        return ()
    out = []
    for start in range(0, n - length + 1, step):
        freqs, power = _welch(pulse[start : start + length], fs, window_s)
        out.append(((start + length / 2) / fs, _peak_hr(freqs, power)))
    return tuple(out)


def _for_plot(pulse: np.ndarray, fs: float, target_fs: float = 15.0, max_points: int = 6000) -> tuple:
    """The band-limited pulse thinned for a chart (it holds nothing above 4 Hz, so slicing is safe)."""
    if len(pulse) == 0:
        return (), 0.0
    step = max(1, int(fs // target_fs), math.ceil(len(pulse) / max_points))
    thinned = pulse[::step]
    sd = thinned.std()
    thinned = thinned / sd if sd > 0 else thinned
    return tuple(float(v) for v in thinned), fs / step


# --- ground truth ---------------------------------------------------------------------------------------


def load_ground_truth(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """(t seconds, PPG values) from a ``time,value`` CSV (header optional) or a UBFC ``ground_truth.txt``."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"The ground-truth file {path.name!r} is not there.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise ValidationError(f"{path.name!r} is not a readable text file of ground truth.") from exc
    lines = [line for line in text.splitlines() if line.strip()]
    t, values = _ubfc(lines) if _looks_ubfc(lines) else _csv(text, path.name)
    t, first = np.unique(t, return_index=True)  # sorted, and a repeated timestamp keeps its first value
    values = values[first]
    if len(t) < 10 or not (np.all(np.isfinite(t)) and np.all(np.isfinite(values))):
        raise ValidationError(f"{path.name!r} holds too few valid time,value samples to be ground truth.")
    if t[0] > 1e5:  # epoch timestamps: make them relative to the recording start
        t = t - t[0]
    if np.median(np.diff(t)) > 0.5:  # no PPG is logged below 2 Hz, so these are milliseconds
        t = t / 1000.0
    return t, values


def _looks_ubfc(lines: Sequence[str]) -> bool:
    if len(lines) != 3 or "," in lines[0]:
        return False
    counts = {len(line.split()) for line in lines}
    return len(counts) == 1 and counts.pop() > 2


def _ubfc(lines: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    try:
        ppg, _hr, t = (np.array([float(v) for v in line.split()]) for line in lines)
    except ValueError as exc:
        raise ValidationError("The UBFC ground_truth.txt has a non-numeric entry.") from exc
    return t, ppg


def _csv(text: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Two numeric columns split on commas, semicolons, tabs or spaces; one optional header line."""
    rows = [
        [cell.strip("\"'") for cell in _CELL_SPLIT.split(line.strip()) if cell]
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    ms = False
    if rows and not _numeric(rows[0][:2]):
        header = rows[0][0].lower()
        ms = "ms" in header or "milli" in header
        rows = rows[1:]
    try:
        pairs = np.array([[float(row[0]), float(row[1])] for row in rows])
    except (ValueError, IndexError) as exc:
        raise ValidationError(
            f"{name!r} is not a ground-truth CSV: every row needs two numbers, time and value."
        ) from exc
    if pairs.size == 0:
        raise ValidationError(f"{name!r} has no ground-truth rows.")
    return pairs[:, 0] / (1000.0 if ms else 1.0), pairs[:, 1]


def _numeric(cells: Sequence[str]) -> bool:
    try:
        [float(c) for c in cells]
    except ValueError:
        return False
    return len(cells) == 2


def ground_truth_hr(t: np.ndarray, values: np.ndarray, *, start_s: float, end_s: float) -> float | None:
    """HR of the reference PPG over [start_s, end_s], with the same band-pass and spectral estimator."""
    inside = (t >= start_s) & (t <= end_s)
    if inside.sum() < 10 or t[inside][-1] - t[inside][0] < MIN_ANALYSABLE_S:
        return None
    ts, vs = t[inside], values[inside]
    fs = 1.0 / float(np.median(np.diff(ts)))
    grid = ts[0] + np.arange(int((ts[-1] - ts[0]) * fs) + 1) / fs
    ppg = bandpass(sps.detrend(np.interp(grid, ts, vs)), fs)
    return estimate_hr(ppg, fs)[0]


# --- quality --------------------------------------------------------------------------------------------


def lossless_from_fourcc(fourcc: str) -> bool | None:
    code = fourcc.lower()
    if code in _LOSSY_FOURCC:
        return False
    if code in _LOSSLESS_FOURCC:
        return True
    return None


def motion_per_s(trace: RgbTrace, t: np.ndarray | None = None) -> float:
    """How fast the detected face moves, in face widths per second (75th percentile over the recording).

    Speeds are taken between consecutive raw detections (a few per second), so the figure includes the
    detector's own jitter: about 0.05–0.1 for a still synthetic face.
    """
    t = frame_timing(trace.t, trace.nominal_fps).t if t is None else t
    hit = np.flatnonzero(np.isfinite(trace.box_width))
    if len(hit) < 3:
        return 0.0
    dt = np.diff(t[hit])
    moved = np.hypot(*np.diff(trace.box_centre[hit], axis=0).T) / trace.box_width[hit][:-1]
    speed = moved[dt > 0] / dt[dt > 0]
    return float(np.percentile(speed, 75)) if len(speed) else 0.0


def quality_flags(
    trace: RgbTrace,
    *,
    timing: FrameTiming | None = None,
    snr_db: float | None = None,
    lossless: bool | None = None,
    analysed: bool = True,
) -> tuple[QualityFlag, ...]:
    """Everything that makes the recording doubtful, critical first."""
    timing = timing or frame_timing(trace.t, trace.nominal_fps)
    face_pct = 100.0 * float(trace.face_found.mean()) if trace.frames else 0.0
    flags = [
        _below("face_missing", face_pct, FACE_FOUND_PCT, "%",
               "A face was found in only {v:.0f}% of frames (want at least {w:.0f}%): check framing, "
               "lighting and that nothing covers the face."),
        _below("low_fps", timing.fps, FPS_MIN, "fps",
               "The frame rate is {v:.1f} fps (want at least {w:.0f}): too few samples per heartbeat "
               "for a precise pulse."),
        _above("unstable_fps", timing.jitter_pct, FPS_JITTER_PCT, "%",
               "Frame intervals vary by {v:.0f}% (want under {w:.0f}%): the camera dropped frames or ran "
               "at a variable rate."),
        _below("too_short", timing.duration_s, DURATION_MIN_S, "s",
               "The recording is {v:.1f} s long (want at least {w:.0f} s): too few beats for a reliable "
               "heart rate."),
        _above("motion", motion_per_s(trace, timing.t), MOTION_BOX_PER_S, "face widths/s",
               "The face moves {v:.2f} face widths per second (want under {w:.2f}): motion swamps the "
               "tiny colour changes of the pulse."),
        _above("overexposed", 100.0 * _mean(trace.clipped_high), CLIPPED_PCT, "%",
               "{v:.0f}% of skin pixels are blown out white (want under {w:.0f}%): lower exposure or "
               "light; clipped pixels carry no pulse."),
        _above("underexposed", 100.0 * _mean(trace.clipped_low), CLIPPED_PCT, "%",
               "{v:.0f}% of skin pixels are crushed to black (want under {w:.0f}%): add light or "
               "exposure; black pixels carry no pulse."),
    ]
    if lossless is False:
        flags.append(QualityFlag(
            "lossy_codec", Severity.WARNING, None, None,
            "The video is compressed lossily; compression removes much of the faint pulse signal. "
            "Record losslessly (e.g. FFV1 or uncompressed) for research use.",
        ))
    if snr_db is not None:
        flags.append(_below("low_snr", snr_db, SNR_MIN_DB, "dB",
                            "The pulse stands only {v:.1f} dB above the noise (want at least {w:.0f} dB): "
                            "the heart rate may be wrong."))
    elif not analysed:
        flags.append(QualityFlag(
            "no_pulse", Severity.CRITICAL, None, None,
            f"Less than {MIN_ANALYSABLE_S:.0f} s of face video could be measured, so no heart rate is given.",
        ))
    kept = [f for f in flags if f is not None]
    return tuple(sorted(kept, key=lambda f: f.severity is not Severity.CRITICAL))


def _below(code: str, value: float, limits: tuple[float, float], unit: str, text: str) -> QualityFlag | None:
    warn, crit = limits
    if value >= warn:
        return None
    severity = Severity.CRITICAL if value < crit else Severity.WARNING
    return QualityFlag(code, severity, value, warn, text.format(v=value, w=warn), unit)


def _above(code: str, value: float, limits: tuple[float, float], unit: str, text: str) -> QualityFlag | None:
    warn, crit = limits
    if value <= warn:
        return None
    severity = Severity.CRITICAL if value > crit else Severity.WARNING
    return QualityFlag(code, severity, value, warn, text.format(v=value, w=warn), unit)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else 0.0


# --- small helpers --------------------------------------------------------------------------------------


def _scaled(progress: ProgressFn | None, share: float) -> ProgressFn | None:
    if progress is None:
        return None
    return lambda fraction: progress(share * fraction)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
