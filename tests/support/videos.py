"""Small generated test videos, good and bad.

Good ones come from OpenCV's ``VideoWriter`` (what rPPG labs record with) or
from the ffmpeg binary ``imageio-ffmpeg`` ships (for H.264, which OpenCV's
wheel cannot encode). Frames are a moving colour pattern, optionally led by
black frames (a camera warming up), so thumbnails have something to choose.
Every function writes one file and returns its path; keep sizes tiny.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

SIZE = (64, 48)
"""(width, height) of generated videos."""
FPS = 30

OPENCV_CODECS = {
    # name: (fourcc for cv2.VideoWriter_fourcc, file extension)
    "mp4v": ("mp4v", "mp4"),
    "mjpg": ("MJPG", "avi"),
    "ffv1_avi": ("FFV1", "avi"),
    "ffv1_mkv": ("FFV1", "mkv"),
    "vp8": ("VP80", "webm"),
    "raw": ("\0\0\0\0", "avi"),
    "huffyuv": ("HFYU", "avi"),
}


def pattern_frame(index: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A BGR frame with gradients that move with ``index`` (not flat, not black)."""
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    blue = (x + 8 * index) % 256 + 0 * y
    green = (y + 4 * index) % 256 + 0 * x
    red = np.full((height, width), 96 + 40 * np.sin(index / 5), dtype=np.float32)
    return np.dstack([blue, green, red]).astype(np.uint8)


def write_opencv(path: Path, fourcc: str, *, frames: int = 30, black_frames: int = 0,
                 size: tuple[int, int] = SIZE, fps: float = FPS) -> Path | None:
    """Write with OpenCV's FFmpeg backend; ``None`` when this wheel cannot encode ``fourcc``."""
    code = 0 if fourcc == "\0\0\0\0" else cv2.VideoWriter_fourcc(*fourcc)
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, code, fps, size)
    if not writer.isOpened():
        return None
    try:
        black = np.zeros((size[1], size[0], 3), np.uint8)
        for i in range(frames):
            writer.write(black if i < black_frames else pattern_frame(i, size))
    finally:
        writer.release()
    return path if path.exists() and path.stat().st_size > 0 else None


def opencv_video(directory: Path, name: str, **kwargs) -> Path | None:
    fourcc, ext = OPENCV_CODECS[name]
    return write_opencv(directory / f"{name}.{ext}", fourcc, **kwargs)


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def write_ffmpeg(path: Path, *codec_args: str, seconds: float = 1.0, size: tuple[int, int] = SIZE,
                 fps: float = FPS) -> Path:
    """Encode ffmpeg's ``testsrc2`` pattern with the given codec arguments."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=s={size[0]}x{size[1]}:r={fps}:d={seconds}",
           *codec_args, str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def h264_mp4(path: Path, *, pix_fmt: str = "yuv420p", lossless: bool = False, faststart: bool = True,
             **kwargs) -> Path:
    args = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", pix_fmt]
    args += ["-qp", "0"] if lossless else ["-crf", "28"]
    if faststart:
        args += ["-movflags", "+faststart"]
    return write_ffmpeg(path, *args, **kwargs)


# --- bad files ---------------------------------------------------------------


def zero_byte(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def text_file(path: Path) -> Path:
    path.write_text("subject 07, session 2\nheart rate from the finger clip: 72 bpm\n" * 20)
    return path


def truncated_copy(source: Path, path: Path, *, keep: float = 0.5) -> Path:
    """The first ``keep`` fraction of ``source``: an interrupted copy."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def avi_with_broken_index(source: Path, path: Path) -> Path:
    """A copy of an AVI whose ``idx1`` entries point a few bytes off their chunks."""
    data = bytearray(source.read_bytes())
    start = data.rfind(b"idx1")
    assert start > 0, "the source AVI has no idx1 index"
    length = struct.unpack_from("<I", data, start + 4)[0]
    for entry in range(start + 8, start + 8 + length, 16):
        offset = struct.unpack_from("<I", data, entry + 8)[0]
        struct.pack_into("<I", data, entry + 8, offset + 6)
    path.write_bytes(bytes(data))
    return path


def avi_without_index(source: Path, path: Path) -> Path:
    """A copy of an AVI with its ``idx1`` chunk cut off and the RIFF size fixed up:
    what a recorder leaves when it stops before writing the index."""
    data = bytearray(source.read_bytes())
    start = data.rfind(b"idx1")
    assert start > 0, "the source AVI has no idx1 index"
    del data[start:]
    struct.pack_into("<I", data, 4, len(data) - 8)
    path.write_bytes(bytes(data))
    return path
