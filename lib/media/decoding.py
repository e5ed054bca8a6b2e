"""Opening a video for decoding: OpenCV's FFmpeg backend, and the ``ffmpeg`` binary ``imageio-ffmpeg`` ships.

Frames are decoded one at a time (or by an ``ffmpeg`` subprocess), never a whole video in memory.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from lib.errors import UnsupportedMedia


@contextmanager
def capture(path: Path, label: str) -> Iterator[cv2.VideoCapture]:
    """An open OpenCV capture of ``path``, released afterwards; ``label`` names the file in messages."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise UnsupportedMedia(
                f"{label} cannot be opened as a video: its data is damaged or uses a codec we cannot decode."
            )
        yield cap
    finally:
        cap.release()


def first_frame(cap: cv2.VideoCapture, label: str) -> np.ndarray:
    """The next frame of ``cap`` (the first, on a fresh capture); refused when it cannot be decoded."""
    ok, frame = cap.read()
    if not ok or frame is None:
        raise UnsupportedMedia(f"{label} cannot be decoded: not even its first frame could be read.")
    return frame


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary."""
    import imageio_ffmpeg  # deferred: finding the binary touches the file system

    return imageio_ffmpeg.get_ffmpeg_exe()
