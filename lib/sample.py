"""A generated sample recording for demo mode: a cartoon face whose skin pulses, and
:func:`store_sample`, which stores it for the demo account through the upload pipeline.

Demo mode has no real recordings, yet every page should have something to
show. This draws a short face-like clip (skin ellipse, hair, eyes, brows,
mouth, shaded like a lit sphere) whose skin darkens with a pulse wave at a
known heart rate, more in green than in red as real skin does, plus a slow
illumination drift. It is written losslessly (FFV1 in AVI) so the quick-look
analysis can find the pulse, and so the pipeline has to make a browser proxy,
as it would for a typical lab recording.

The test suite has a richer generator (tests/support/synthetic_pulse.py);
``lib`` must not import tests, so this is the small version the app ships.
"""

from __future__ import annotations

import logging
import pickle
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lib.demo import SeedTarget
from lib.pipeline import Backends, process_upload
from lib.records import ResearchFields
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.storage import ObjectStore

log = logging.getLogger(__name__)

SAMPLE_NAME = "demo-sample-face-72bpm.avi"
SAMPLE_RESEARCH = ResearchFields(
    subject_id="DEMO-01",
    session_label="sample",
    notes="Generated sample: a cartoon face whose skin pulses at 72 bpm (lossless FFV1).",
    tags=("demo", "synthetic"),
)
"""The research fields the sample is stored with."""


@dataclass(frozen=True)
class SampleSpec:
    hr_bpm: float = 72.0
    seconds: float = 10.0
    fps: float = 30.0
    width: int = 320
    height: int = 240
    pulse_amplitude: float = 0.01
    """Green AC/DC of the skin; real skin is roughly 0.002-0.01, the top end keeps the demo legible."""
    drift: float = 0.04


# Relative pulsatile strength per channel (B, G, R): green strongest (de Haan & van Leest 2014).
_PULSE_BGR = np.array([0.53, 0.77, 0.33], dtype=np.float32) / 0.77


def write_sample(path: Path, spec: SampleSpec = SampleSpec()) -> Path:
    """Render the sample clip to ``path`` (an ``.avi``) frame by frame and return it."""
    still, skin = _still(spec.width, spec.height)
    pulse_gain = skin[..., None] * still * (spec.pulse_amplitude * _PULSE_BGR)
    frames = round(spec.seconds * spec.fps)
    t = np.arange(frames) / spec.fps
    phase = 2 * np.pi * spec.hr_bpm / 60.0 * t
    # A PPG-like wave: systolic peak plus a dicrotic bump.
    wave = np.cos(phase) + 0.35 * np.cos(2 * phase - 1.0)
    wave = (wave - wave.mean()) / wave.std()
    light = 1.0 + spec.drift * np.sin(2 * np.pi * 0.05 * t)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), spec.fps, (spec.width, spec.height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write FFV1 video to {path}")
    try:
        for i in range(frames):
            frame = (still - wave[i] * pulse_gain) * light[i]
            writer.write(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
    finally:
        writer.release()
    return path


def store_sample(target: SeedTarget) -> None:
    """Draw the sample clip and store it for ``target``'s user through the upload pipeline.

    Runs in the process :func:`lib.demo.seed_sample` starts (:func:`main`), never in the app's own.
    """
    backends = Backends(target.settings, ObjectStore.from_settings(target.settings),
                        SqliteRepository(target.db_path, target.user_id),
                        SqliteServerRecords(target.db_path, target.user_id))
    folder = Path(tempfile.mkdtemp(prefix="sample-", dir=target.workdir))
    try:
        clip = write_sample(folder / SAMPLE_NAME)
        record = process_upload(clip, SAMPLE_NAME, SAMPLE_RESEARCH, backends)
        log.info("demo mode: sample recording %s is %s", record.id, record.status)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _still(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The face at rest (float32 BGR) and where its bare skin is (0..1)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.array([150, 150, 140], np.float32) * (0.8 + 0.3 * xx / width)[..., None]
    cx, cy = width // 2, int(height * 0.52)
    fh = int(height * 0.36)
    fw = int(fh * 0.78)
    skin_bgr = np.array([110.0, 145.0, 190.0], np.float32)
    # Shaded like a sphere: the gradient also dithers the pulse across 8-bit levels.
    shade = np.clip(1.05 - 0.25 * (((xx - cx) / fw) ** 2 + ((yy - cy) / fh) ** 2), 0.7, 1.05)
    face = np.zeros((height, width), np.uint8)
    cv2.ellipse(face, (cx, cy), (fw, fh), 0, 0, 360, 255, -1)
    inside = face > 0
    image[inside] = (skin_bgr * shade[..., None])[inside]
    covered = np.zeros((height, width), np.uint8)
    _features(image, covered, cx, cy, fw, fh, skin_bgr)
    skin = (inside & (covered == 0)).astype(np.float32)
    blur = max(0.6, fw / 45.0)
    return cv2.GaussianBlur(image, (0, 0), blur), cv2.GaussianBlur(skin, (0, 0), blur)


def _features(image: np.ndarray, covered: np.ndarray, cx: int, cy: int, fw: int, fh: int,
              skin: np.ndarray) -> None:
    """Hair, eyes, brows and mouth, drawn on ``image`` and marked in ``covered``."""
    hair = (35, 40, 50)
    top = (cx, cy - int(fh * 0.7)), (int(fw * 1.04), int(fh * 0.42))
    for target, colour in ((image, hair), (covered, 255)):
        cv2.ellipse(target, *top, 0, 180, 360, colour, -1)
    ey, ex = cy - int(fh * 0.18), int(fw * 0.42)
    eye_w, eye_h = max(2, int(fw * 0.22)), max(1, int(fh * 0.07))
    thick = max(1, int(fh * 0.05))
    socket = tuple(float(c) for c in skin * 0.7)
    for side in (-1, 1):
        x = cx + side * ex
        cv2.ellipse(image, (x, ey), (int(eye_w * 1.3), int(eye_h * 2.2)), 0, 0, 360, socket, -1)
        cv2.ellipse(image, (x, ey), (eye_w, eye_h), 0, 0, 360, (200, 200, 205), -1)
        cv2.circle(image, (x, ey), eye_h, (30, 30, 40), -1)
        cv2.ellipse(covered, (x, ey), (int(eye_w * 1.3), int(eye_h * 2.2)), 0, 0, 360, 255, -1)
        brow = (x, ey - int(fh * 0.14) + thick)
        cv2.ellipse(image, brow, (int(eye_w * 1.3), thick * 2), 0, 200, 340, hair, thick)
        cv2.ellipse(covered, brow, (int(eye_w * 1.3), thick * 2), 0, 200, 340, 255, thick)
    mouth = (cx, cy + int(fh * 0.45)), (int(fw * 0.38), max(1, int(fh * 0.06)))
    cv2.ellipse(image, *mouth, 0, 0, 360, (70, 60, 140), -1)
    cv2.ellipse(covered, *mouth, 0, 0, 360, 255, -1)


def main() -> None:
    """``python -m lib.sample``: store the sample for the pickled :class:`~lib.demo.SeedTarget` on stdin."""
    logging.basicConfig(level=logging.INFO)  # the one line of news reaches the app's log
    store_sample(pickle.load(sys.stdin.buffer))


if __name__ == "__main__":
    main()
