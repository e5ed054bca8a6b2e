"""The upload gate and the facts of a recording: ``validate`` and ``probe``, both on a file on disk."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import cv2

from lib.errors import UnsupportedMedia
from lib.media import codecs, h264
from lib.media.containers import BROWSER_CONTENT_TYPES, ContainerInfo, display_name, sniff_container, sniff_path
from lib.media.decoding import capture, ffmpeg_exe, first_frame
from lib.media.integrity import check_structure
from lib.records import VideoProperties

COUNT_FRAMES_MAX_BYTES = 4 * 1024**3
"""Above this, a Matroska frame count stays the container's duration x fps estimate."""


def validate(path: Path | str, original_name: str) -> ContainerInfo:
    """Extension allow-list, magic bytes, structure, and one decoded frame.

    The upload size limit is not a property of the video: ``lib.pipeline.limits`` checks it first.
    """
    path = Path(path)
    label = display_name(original_name)
    info = sniff_container(path, original_name)
    check_structure(path, info.kind, label)
    with capture(path, label) as cap:
        first_frame(cap, label)
    return info


def probe(path: Path | str, *, name: str | None = None) -> VideoProperties:
    """Video properties of ``path``; :class:`UnsupportedMedia` if it is truncated or undecodable.

    ``name`` (the researcher's file name) is only used in messages.
    """
    path = Path(path)
    label = display_name(name or path.name)
    sniffed = sniff_path(path, label)
    check_structure(path, sniffed.kind, label)
    with capture(path, label) as cap:
        fps = cap.get(cv2.CAP_PROP_FPS)
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        pix_fmt = codecs.fourcc_bytes(cap.get(cv2.CAP_PROP_CODEC_PIXEL_FORMAT))
        codec = codecs.codec_name(codecs.fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)))
        sps = h264.first_sps(path, cap) if codec == "h264" else None
        first_frame(cap, label)
    if not fps or fps <= 0 or width <= 0 or height <= 0:
        raise UnsupportedMedia(f"{label} has no usable frame rate or frame size in its header.")
    # AVI and MP4 indexes carry an exact per-stream frame count; Matroska does not,
    # and OpenCV then estimates duration x fps, which is off by a frame or more.
    if frame_count <= 0 or (sniffed.kind == "matroska" and path.stat().st_size <= COUNT_FRAMES_MAX_BYTES):
        frame_count = _count_packets(path) or frame_count
    if frame_count <= 0:
        raise UnsupportedMedia(f"{label}: the number of frames cannot be determined.")
    duration = frame_count / fps
    return VideoProperties(
        duration_s=round(duration, 3),
        fps=round(fps, 3),
        width=width,
        height=height,
        frame_count=frame_count,
        codec=codec,
        lossless=codecs.is_lossless(codec, sps),
        browser_playable=codecs.browser_playable(codec, sniffed, pix_fmt, sps),
        bit_rate=round(path.stat().st_size * 8 / duration),
    )


def needs_preview(video: VideoProperties, container: ContainerInfo) -> bool:
    """True when a browser cannot play the original, so an H.264 proxy is needed."""
    return not (video.browser_playable and container.content_type in BROWSER_CONTENT_TYPES)


def _count_packets(path: Path) -> int | None:
    """Video packets counted by demuxing with stream copy: no decoding, one read of the file."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0",
           "-c", "copy", "-f", "null", "-", "-progress", "pipe:1", "-nostats"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    frames = re.findall(r"^frame=(\d+)$", out, re.MULTILINE)
    return int(frames[-1]) if frames else None
