"""Synthetic face-like videos with a known pulse, for testing and benchmarking lib/rppg.

The clip is a cartoon face (skin ellipse, hair, brows, eyes, nose shadow, mouth; blurred so the edges look
photographic enough for OpenCV's Haar frontal-face cascade to fire) on a wall. Every skin pixel is darkened
by a PPG-shaped wave at the chosen heart rate with a per-channel amplitude that follows the blood-volume
pulse signature of skin (de Haan & van Leest 2014: R:G:B ≈ 0.33:0.77:0.53, green strongest). On top come
sensor noise, a slow illumination drift, a small head sway and optional clipping, all seeded.

``make_clip`` also returns the true PPG so tests can write ground-truth files from it, and a box that lies
on skin at rest (``skin_roi``) so the estimator can be tested without the face detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

# Relative pulsatile strength per channel in B, G, R order (OpenCV), normalised so green is 1.
PULSE_SIGNATURE_BGR = np.array([0.53, 0.77, 0.33], dtype=np.float32) / 0.77

_CODECS = {"FFV1": ".avi", "MJPG": ".avi", "mp4v": ".mp4"}


@dataclass(frozen=True)
class ClipSpec:
    """What to render. Amplitudes are fractions of the pixel value; noise is in 8-bit levels."""

    hr_bpm: float = 72.0
    seconds: float = 15.0
    fps: float = 30.0
    size: tuple[int, int] = (320, 240)  # width, height
    codec: str = "FFV1"  # FFV1 (lossless), MJPG or mp4v (lossy)
    face: bool = True  # False: an empty wall, nothing to detect
    pulse_amplitude: float = 0.006  # green AC/DC; real skin is roughly 0.002-0.01
    noise_sigma: float = 2.0  # per-pixel Gaussian sensor noise
    drift: float = 0.06  # amplitude of the slow illumination change (fraction)
    drift_hz: float = 0.03
    motion_px: float = 0.0  # head sway amplitude, as a fraction of the face width
    motion_hz: float = 0.15
    hrv_bpm: float = 1.0  # respiratory sinus arrhythmia: HR swings this much at 0.25 Hz
    exposure: float = 1.0  # brightness gain; ~1.6 clips the skin, ~0.05 crushes it to black
    skin_bgr: tuple[float, float, float] = (110.0, 145.0, 190.0)
    seed: int = 0


@dataclass(frozen=True)
class Clip:
    path: Path
    spec: ClipSpec
    face_box: tuple[int, int, int, int]  # x, y, w, h of the face ellipse's bounding box at rest
    skin_roi: tuple[int, int, int, int]  # a box on the cheeks/forehead at rest: skin only
    ppg_t: np.ndarray = field(repr=False)  # seconds, at the frame times
    ppg: np.ndarray = field(repr=False)  # the true pulse wave (blood volume up = positive)


def make_clip(path: Path, spec: ClipSpec = ClipSpec()) -> Clip:
    """Render ``spec`` to ``path`` (the suffix is replaced to suit the codec) and return what was drawn."""
    path = Path(path).with_suffix(_CODECS[spec.codec])
    width, height = spec.size
    rng = np.random.default_rng(spec.seed)
    base, skin_mask, face_box = _render_still(width, height, spec)
    # The pulse darkens skin (blood absorbs), more in green than in red.
    pulse_gain = skin_mask[..., None] * base * (spec.pulse_amplitude * PULSE_SIGNATURE_BGR)
    base, pulse_gain = base.astype(np.float32), pulse_gain.astype(np.float32)
    frames = round(spec.seconds * spec.fps)
    t = np.arange(frames) / spec.fps
    ppg = ppg_wave(t, spec.hr_bpm, spec.hrv_bpm, rng)
    illumination = spec.exposure * (
        1.0 + spec.drift * np.sin(2 * np.pi * spec.drift_hz * t + rng.uniform(0, 2 * np.pi))
    )
    shift = _sway(t, spec, face_box[2], rng)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*spec.codec), spec.fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {spec.codec} to {path}")
    noise = np.zeros((height, width, 3), np.float32)
    cv2.setRNGSeed(spec.seed)  # cv2.randn is ~8x faster than numpy for a frame of noise
    try:
        for i in range(frames):
            # illumination * (base - ppg * pulse_gain) in one pass
            frame = cv2.addWeighted(base, illumination[i], pulse_gain, -illumination[i] * ppg[i], 0.0)
            if spec.motion_px:
                move = np.float32([[1, 0, shift[i, 0]], [0, 1, shift[i, 1]]])
                frame = cv2.warpAffine(frame, move, (width, height), borderMode=cv2.BORDER_REPLICATE)
            if spec.noise_sigma:
                cv2.randn(noise, (0.0,) * 3, (spec.noise_sigma,) * 3)  # a scalar would only reach blue
            writer.write(cv2.add(frame, noise, dtype=cv2.CV_8U))  # rounds and saturates like a sensor
    finally:
        writer.release()
    return Clip(path, spec, face_box, _skin_roi(face_box), t, ppg)


def ppg_wave(t: np.ndarray, hr_bpm: float, hrv_bpm: float, rng: np.random.Generator) -> np.ndarray:
    """A PPG-like wave (systolic peak and a dicrotic bump), unit standard deviation."""
    rate_hz = (hr_bpm + hrv_bpm * np.sin(2 * np.pi * 0.25 * t + rng.uniform(0, 2 * np.pi))) / 60.0
    dt = np.diff(t, prepend=t[0])
    phase = 2 * np.pi * np.cumsum(rate_hz * dt) + rng.uniform(0, 2 * np.pi)
    wave = np.cos(phase) + 0.35 * np.cos(2 * phase - 1.0) + 0.1 * np.cos(3 * phase - 2.0)
    return ((wave - wave.mean()) / wave.std()).astype(np.float32)


def write_ground_truth_csv(clip: Clip, path: Path, *, header: bool = True, rate_hz: float = 60.0) -> Path:
    """The true PPG as ``time,value`` rows (resampled to ``rate_hz``, as a pulse oximeter would log it)."""
    t, value = _resampled_ppg(clip, rate_hz)
    rows = [f"{a:.4f},{b:.5f}" for a, b in zip(t, value, strict=True)]
    lines = (["time_s,ppg"] if header else []) + rows
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def write_ubfc_ground_truth(clip: Clip, path: Path, *, rate_hz: float = 60.0) -> Path:
    """UBFC-rPPG DATASET_2 ``ground_truth.txt``: line 1 PPG, line 2 HR, line 3 timestamps (s)."""
    t, value = _resampled_ppg(clip, rate_hz)
    hr = np.full_like(t, clip.spec.hr_bpm)
    lines = [" ".join(f"{v:.7e}" for v in row) for row in (value, hr, t)]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def _resampled_ppg(clip: Clip, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(clip.spec.seed)
    duration = clip.spec.seconds
    t = np.arange(int(duration * rate_hz)) / rate_hz
    # Same seed and recipe as the video, so this is the very wave that modulates the skin.
    ppg = ppg_wave(t, clip.spec.hr_bpm, clip.spec.hrv_bpm, rng)
    return t, ppg


def _sway(t: np.ndarray, spec: ClipSpec, face_w: int, rng: np.random.Generator) -> np.ndarray:
    amplitude = spec.motion_px * face_w
    phase = rng.uniform(0, 2 * np.pi, size=2)
    x = amplitude * np.sin(2 * np.pi * spec.motion_hz * t + phase[0])
    y = 0.5 * amplitude * np.sin(2 * np.pi * spec.motion_hz * 1.3 * t + phase[1])
    return np.stack([x, y], axis=1).astype(np.float32)


def _render_still(width: int, height: int, spec: ClipSpec) -> tuple[np.ndarray, np.ndarray, tuple]:
    """The face at rest (float32 BGR), its skin mask (0..1) and the face ellipse's bounding box."""
    _yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    wall = np.array([150, 150, 140], np.float32) * (0.8 + 0.3 * xx / width)[..., None]
    image = wall.astype(np.float32)
    face_mask = np.zeros((height, width), np.float32)
    face_box = (0, 0, 0, 0)
    if spec.face:
        image, face_mask, face_box = _draw_face(image, width, height, spec)
    blur = max(0.6, face_box[2] / 90.0) if spec.face else 1.0
    image = cv2.GaussianBlur(image, (0, 0), blur)
    face_mask = cv2.GaussianBlur(face_mask, (0, 0), blur)
    return image, face_mask, face_box


def _draw_face(image: np.ndarray, width: int, height: int, spec: ClipSpec) -> tuple:
    cx, cy = width // 2, int(height * 0.52)
    fh = int(height * 0.36)  # half height of the face ellipse
    fw = int(fh * 0.78)
    skin = np.array(spec.skin_bgr, np.float32)
    hair = (35, 40, 50)
    dark = (30, 30, 40)

    # Shade the skin like a lit sphere: brighter in the middle, darker at the rim.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xx - cx) / fw) ** 2 + ((yy - cy) / fh) ** 2
    shade = np.clip(1.05 - 0.25 * r2, 0.7, 1.05)[..., None]
    face = np.zeros((height, width), np.uint8)
    cv2.ellipse(face, (cx, cy), (fw, fh), 0, 0, 360, 255, -1)
    inside = face > 0
    image[inside] = (skin * shade)[inside]
    skin_mask = inside.astype(np.float32)

    features = np.zeros((height, width), np.uint8)  # where the skin is covered (no pulse)
    # Hair on top of the head.
    hair_centre, hair_axes = (cx, cy - int(fh * 0.7)), (int(fw * 1.04), int(fh * 0.42))
    cv2.ellipse(image, hair_centre, hair_axes, 0, 180, 360, hair, -1)
    cv2.ellipse(features, hair_centre, hair_axes, 0, 180, 360, 255, -1)
    ey = cy - int(fh * 0.18)
    ex = int(fw * 0.42)
    eye_w, eye_h = max(2, int(fw * 0.22)), max(1, int(fh * 0.07))
    thick = max(1, int(fh * 0.05))
    for side in (-1, 1):
        x = cx + side * ex
        # Shadowed eye socket, then the eye itself, then the brow above it.
        cv2.ellipse(image, (x, ey), (int(eye_w * 1.3), int(eye_h * 2.2)), 0, 0, 360, _colour(skin * 0.7), -1)
        cv2.ellipse(image, (x, ey), (eye_w, eye_h), 0, 0, 360, (200, 200, 205), -1)
        cv2.circle(image, (x, ey), max(1, eye_h), dark, -1)
        cv2.ellipse(features, (x, ey), (int(eye_w * 1.3), int(eye_h * 2.2)), 0, 0, 360, 255, -1)
        brow_y = ey - int(fh * 0.14)
        cv2.ellipse(image, (x, brow_y + thick), (int(eye_w * 1.3), thick * 2), 0, 200, 340, hair, thick)
        cv2.ellipse(features, (x, brow_y + thick), (int(eye_w * 1.3), thick * 2), 0, 200, 340, 255, thick)
    # Nose: a light bridge between shadowed sides, and nostrils.
    ny = cy + int(fh * 0.18)
    for side in (-1, 1):
        x = cx + side * int(fw * 0.12)
        cv2.line(image, (x, ey + eye_h), (x, ny), _colour(skin * 0.8), max(1, thick // 2))
        cv2.circle(image, (cx + side * int(fw * 0.09), ny), max(1, thick // 2 + 1), _colour(skin * 0.5), -1)
    # Mouth.
    my = cy + int(fh * 0.45)
    cv2.ellipse(image, (cx, my), (int(fw * 0.38), max(1, int(fh * 0.06))), 0, 0, 360, (70, 60, 140), -1)
    cv2.ellipse(features, (cx, my), (int(fw * 0.38), max(1, int(fh * 0.06))), 0, 0, 360, 255, -1)
    skin_mask[features > 0] = 0.0
    return image, skin_mask, (cx - fw, cy - fh, 2 * fw, 2 * fh)


def _colour(bgr: np.ndarray) -> tuple[float, float, float]:
    return (float(bgr[0]), float(bgr[1]), float(bgr[2]))


def _skin_roi(face_box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """A box across both cheeks, below the eyes and above the mouth: skin only."""
    x, y, w, h = face_box
    return (x + int(w * 0.2), y + int(h * 0.58), int(w * 0.6), int(h * 0.1))
