"""Recording checks and derivatives: container sniffing, OpenCV probe,
thumbnail and the H.264 preview proxy.

Everything here works on a file on disk and streams it: headers are read with
seeks, frames are decoded one at a time by OpenCV or by an ``ffmpeg``
subprocess (the binary ``imageio-ffmpeg`` ships), never a whole video in memory.

Decisions worth knowing:

* A file must be named for what its bytes are (``.mp4``/``.mov``/``.m4v`` for
  ISO-BMFF, ``.avi`` for RIFF AVI, ``.mkv``/``.webm`` for Matroska). A WebM
  DocType may be named ``.mkv`` (WebM is a Matroska subset), not vice versa.
* Truncated files (a header promising more bytes than the file has, an MP4
  without its ``moov`` index) and AVIs whose index is missing or points at the
  wrong bytes are refused, even when some frames would decode: that is what an
  interrupted recording or copy looks like, frame timing cannot be trusted, and
  the message says how to repair it (``ffmpeg -i in -c copy out`` rebuilds it).
* ``browser_playable`` is true only for 8-bit 4:2:0 H.264 (Baseline/Main/High)
  in ISO-BMFF, and VP8/VP9/AV1 in WebM. Everything else gets a proxy; Matroska
  is not a web format (Firefox and Safari refuse it) even with a VP9 inside.
* ``lossless`` is decided from the codec: FFV1, uncompressed/raw, HuffYUV,
  UT Video, MagicYUV, Lagarith, PNG; H.264 when its SPS sets
  ``qpprime_y_zero_transform_bypass_flag`` (x264 sets it only for ``-qp 0`` /
  ``-crf 0``; best effort for other encoders). Lossless HEVC/VP9/AV1 are
  reported as lossy.
"""

from __future__ import annotations

import functools
import os
import re
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lib.errors import FileTooLarge, PulseVaultError, UnsupportedMedia
from lib.records import VideoProperties
from lib.units import human_bytes

ALLOWED_EXTENSIONS = ("mp4", "mov", "m4v", "avi", "mkv", "webm")

SNIFF_BYTES = 4096
"""Enough for every magic number and the EBML header with its DocType."""

PREVIEW_MAX_LONG_SIDE = 1280
PREVIEW_MAX_SHORT_SIDE = 720
"""The proxy fits 1280x720 (or 720x1280 for portrait): "at most 720p"."""

PREVIEW_PRESET = "veryfast"
PREVIEW_CRF = 26
"""Tuned with bench/media.py: a quick-look proxy, not an archive copy."""

COUNT_FRAMES_MAX_BYTES = 4 * 1024**3
"""Above this, a Matroska frame count stays the container's duration x fps estimate."""

_EXTENSION_KIND = {
    "mp4": "mp4", "mov": "mp4", "m4v": "mp4", "avi": "avi", "mkv": "matroska", "webm": "matroska",
}
_FORMAT_LABEL = {
    "mp4": "MP4", "mov": "QuickTime (MOV)", "m4v": "M4V", "avi": "AVI", "mkv": "Matroska (MKV)",
    "webm": "WebM",
}
CONTENT_TYPES = {
    "mp4": "video/mp4", "mov": "video/quicktime", "m4v": "video/x-m4v", "avi": "video/x-msvideo",
    "mkv": "video/x-matroska", "webm": "video/webm",
}
"""Content-Type by extension (for Matroska the bytes may pick ``webm``); also the browser upload's type."""
_BROWSER_CONTENT_TYPES = frozenset({"video/mp4", "video/quicktime", "video/x-m4v", "video/webm"})
SERVED_TYPES = {**CONTENT_TYPES, "jpg": "image/jpeg", "csv": "text/csv", "txt": "text/plain"}
"""Content-Type a presigned GET answers with, by the key's extension: every file the key layout
allows (originals, thumbnail, preview, ground truth). Never a row's ``content_type``."""
INLINE_TYPE_PREFIXES = ("video/", "image/")
"""The only types a browser is ever told to show inline; anything else is an attachment."""
FALLBACK_SERVED_TYPE = "application/octet-stream"


def served_as(key: str) -> tuple[str, bool]:
    """(Content-Type, inline allowed) for a presigned GET of ``key``, from its extension alone.

    A polyglot that passed validation as a video is still answered as a video (or downloaded),
    so a browser never runs it as a page from the bucket's origin.
    """
    _stem, dot, ext = key.rsplit("/", 1)[-1].rpartition(".")
    content_type = SERVED_TYPES.get(ext.lower(), FALLBACK_SERVED_TYPE) if dot else FALLBACK_SERVED_TYPE
    return content_type, content_type.startswith(INLINE_TYPE_PREFIXES)


@dataclass(frozen=True)
class ContainerInfo:
    """What a file's bytes say it is. ``kind`` is ``avi``, ``mp4`` or ``matroska``."""

    kind: str
    extension: str
    content_type: str


@dataclass(frozen=True)
class _Sniffed:
    kind: str
    subtype: str  # the extension the bytes call for: mp4/mov/m4v/avi/mkv/webm


# --- sniffing ----------------------------------------------------------------


def sniff_container(path: Path | str, original_name: str) -> ContainerInfo:
    """Check that the bytes of ``path`` are the container its name claims."""
    path = Path(path)
    label = _display_name(original_name)
    ext = _extension(original_name)
    if ext not in _EXTENSION_KIND:
        allowed = ", ".join(ALLOWED_EXTENSIONS)
        if not ext:
            raise UnsupportedMedia(f"{label} has no file extension; accepted videos: {allowed}.")
        raise UnsupportedMedia(f"{label}: .{ext} files are not accepted; accepted videos: {allowed}.")
    head = _read_head(path)
    if not head:
        raise UnsupportedMedia(f"{label} is empty (0 bytes).")
    sniffed = _sniff(head)
    wanted = f"{label} is not {_article(_FORMAT_LABEL[ext])} {_FORMAT_LABEL[ext]} video"
    if sniffed is None:
        raise UnsupportedMedia(f"{wanted}: its bytes look like {_describe(head)}.")
    if sniffed.kind != _EXTENSION_KIND[ext] or (ext == "webm" and sniffed.subtype != "webm"):
        raise UnsupportedMedia(
            f"{wanted}: its bytes look like {_article(_FORMAT_LABEL[sniffed.subtype])} "
            f"{_FORMAT_LABEL[sniffed.subtype]} video. Rename it to .{sniffed.subtype} and try again."
        )
    return ContainerInfo(kind=sniffed.kind, extension=ext, content_type=_content_type(sniffed, ext))


def _content_type(sniffed: _Sniffed, ext: str) -> str:
    # The bytes decide where they are more specific than the name: a .mkv holding
    # WebM is served as video/webm so a browser will play it.
    if sniffed.kind == "matroska":
        return CONTENT_TYPES[sniffed.subtype]
    return CONTENT_TYPES[ext]


def _sniff(head: bytes) -> _Sniffed | None:
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return _Sniffed("avi", "avi")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return _Sniffed("mp4", "mov")
        if brand.startswith(b"M4V"):
            return _Sniffed("mp4", "m4v")
        return _Sniffed("mp4", "mp4")
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return _Sniffed("mp4", "mov")  # classic QuickTime, from before 'ftyp' existed
    if head[:4] == b"\x1a\x45\xdf\xa3":
        doctype = _ebml_doctype(head)
        if doctype == "webm":
            return _Sniffed("matroska", "webm")
        if doctype == "matroska":
            return _Sniffed("matroska", "mkv")
    return None


def _sniff_path(path: Path, label: str) -> _Sniffed:
    head = _read_head(path)
    if not head:
        raise UnsupportedMedia(f"{label} is empty (0 bytes).")
    sniffed = _sniff(head)
    if sniffed is None:
        raise UnsupportedMedia(f"{label} is not a supported video: its bytes look like {_describe(head)}.")
    return sniffed


_OTHER_MAGIC = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"OggS", "an Ogg file"),
    (b"FLV", "a Flash (FLV) video"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "a Windows Media (ASF/WMV) file"),
    (b"\x00\x00\x01\xba", "an MPEG program stream"),
    (b"ID3", "an MP3 audio file"),
)


def _describe(head: bytes) -> str:
    """A researcher-readable guess at what the bytes are, for the refusal message."""
    if head[:4] == b"RIFF":
        return "a WAV audio file" if head[8:12] == b"WAVE" else "a RIFF file that is not AVI"
    for magic, what in _OTHER_MAGIC:
        if head.startswith(magic):
            return what
    if head[0] == 0x47 and len(head) > 376 and head[188] == 0x47 and head[376] == 0x47:
        return "an MPEG transport stream (.ts)"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "an EBML file that is neither Matroska nor WebM"
    if _looks_like_text(head):
        return "plain text"
    return "no video format we know"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the end of the sniffed block is still text.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * max(len(text), 1)


def _ebml_doctype(head: bytes) -> str | None:
    """The DocType string of the EBML header at the start of ``head``."""
    try:
        pos = 4
        size, pos = _vint(head, pos)
        end = min(pos + size, len(head))
        while pos < end:
            element_id, pos = _ebml_id(head, pos)
            length, pos = _vint(head, pos)
            if element_id == 0x4282:
                return head[pos:pos + length].rstrip(b"\x00").decode("ascii", "replace")
            pos += length
    except IndexError:
        return None
    return None


def _vint_length(first: int) -> int:
    for length in range(1, 9):
        if first & (0x80 >> (length - 1)):
            return length
    raise IndexError("invalid EBML variable-length integer")


def _ebml_id(data: bytes, pos: int) -> tuple[int, int]:
    length = _vint_length(data[pos])
    return int.from_bytes(data[pos:pos + length], "big"), pos + length


def _vint(data: bytes, pos: int) -> tuple[int, int]:
    """An EBML size; the all-ones value ("unknown size") comes back as -1."""
    length = _vint_length(data[pos])
    if pos + length > len(data):
        raise IndexError("EBML size runs past the data")
    value = int.from_bytes(data[pos:pos + length], "big") & ((1 << (7 * length)) - 1)
    return (-1 if value == (1 << (7 * length)) - 1 else value), pos + length


# --- structure: truncation and indexes ------------------------------------------


def _check_structure(path: Path, kind: str, label: str) -> None:
    size = path.stat().st_size
    with path.open("rb") as fh:
        if kind == "mp4":
            _check_mp4(fh, size, label)
        elif kind == "avi":
            _check_avi(fh, size, label)
        else:
            _check_matroska(fh, size, label)


def _truncated(label: str, size: int, needed: int, what: str) -> UnsupportedMedia:
    return UnsupportedMedia(
        f"{label} is truncated: it ends at {human_bytes(size)} but its {what} needs "
        f"{human_bytes(needed)}. The recording or copy was probably interrupted; "
        "copy it again from the recording machine."
    )


def _check_mp4(fh, size: int, label: str) -> None:
    offset, boxes = 0, set()
    while offset + 8 <= size:
        fh.seek(offset)
        box_size, box_type = struct.unpack(">I4s", fh.read(8))
        if box_size == 1:
            box_size = struct.unpack(">Q", fh.read(8))[0]
        elif box_size == 0:  # "runs to the end of the file": legal for the last box
            box_size = size - offset
        name = box_type.decode("latin-1")
        if box_size < 8:
            raise UnsupportedMedia(f"{label} is damaged: its '{name}' box has an impossible size.")
        if offset + box_size > size:
            raise _truncated(label, size, offset + box_size, f"'{name}' box")
        boxes.add(box_type)
        offset += box_size
    if b"moov" not in boxes:
        raise UnsupportedMedia(
            f"{label} has no index ('moov' box): the recording was not finalised (the recorder or "
            "copy stopped early), so its frames cannot be located. Copy it again from the source."
        )


_AVIF_HASINDEX = 0x10
_IDX1_SAMPLES = 16
"""Index entries spot-checked against the chunks they point at (seeks, not a full scan)."""


def _check_avi(fh, size: int, label: str) -> None:
    fh.seek(4)
    riff_end = 8 + struct.unpack("<I", fh.read(4))[0]
    _check_riff_extensions(fh, size, riff_end, label)
    flags, has_odml, movi, idx1 = 0, False, None, None
    offset = 12
    while offset + 8 <= riff_end:
        fh.seek(offset)
        chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
        if chunk_id == b"LIST":
            list_type = fh.read(4)
            if list_type == b"hdrl":
                hdrl = fh.read(min(max(chunk_size - 4, 0), 1 << 20))
                if hdrl[:4] == b"avih" and len(hdrl) >= 24:
                    flags = struct.unpack("<I", hdrl[20:24])[0]
                has_odml = b"indx" in hdrl  # OpenDML super index: ffmpeg reads it without idx1
            elif list_type == b"movi":
                movi = offset + 8
        elif chunk_id == b"idx1":
            idx1 = (offset + 8, chunk_size)
        offset += 8 + chunk_size + (chunk_size & 1)
    repair = f"Re-mux it with `ffmpeg -i {label} -c copy fixed.avi` to rebuild the index and upload that."
    if movi is None:
        raise UnsupportedMedia(f"{label} is damaged: it has no video data ('movi' list).")
    if idx1 is None:
        if has_odml:
            return
        # AVIF_HASINDEX promised an index that never got written: the recorder stopped early.
        why = "the recording was probably not finalised" if flags & _AVIF_HASINDEX else "it was never written"
        raise UnsupportedMedia(f"{label} has a broken index: its 'idx1' index is missing ({why}). {repair}")
    if not _idx1_points_at_chunks(fh, size, movi, *idx1):
        raise UnsupportedMedia(
            f"{label} has a broken index: its 'idx1' entries do not point at its frames. {repair}"
        )


def _check_riff_extensions(fh, size: int, riff_end: int, label: str) -> None:
    """Recordings over 1 GB continue in 'RIFF AVIX' chunks (OpenDML); each must fit in the file."""
    end = riff_end
    while True:
        if end > size:
            raise _truncated(label, size, end, "RIFF header")
        fh.seek(end + (end & 1))
        header = fh.read(8)
        if len(header) < 8 or header[:4] != b"RIFF":
            return
        end += (end & 1) + 8 + struct.unpack("<I", header[4:])[0]


def _idx1_points_at_chunks(fh, size: int, movi: int, start: int, length: int) -> bool:
    count = length // 16
    if length % 16 or count == 0:
        return False
    picks = sorted({round(i * (count - 1) / (_IDX1_SAMPLES - 1)) for i in range(_IDX1_SAMPLES)})
    entries = []
    for i in picks:
        fh.seek(start + 16 * i)
        entries.append(struct.unpack("<4sIII", fh.read(16)))
    # Offsets are relative to the 'movi' fourcc, or (some old writers) to the file start.
    return any(
        all(_chunk_at(fh, size, base + offset, ckid, chunk_len) for ckid, _, offset, chunk_len in entries)
        for base in (movi, 0)
    )


def _chunk_at(fh, size: int, pos: int, ckid: bytes, length: int) -> bool:
    if pos < 0 or pos + 8 + length > size:
        return False
    fh.seek(pos)
    return fh.read(4) == ckid


def _check_matroska(fh, size: int, label: str) -> None:
    head = fh.read(SNIFF_BYTES)
    try:
        header_size, pos = _vint(head, 4)
        pos += header_size
        segment_id, pos = _ebml_id(head, pos)
        segment_size, pos = _vint(head, pos)
    except IndexError as exc:
        raise UnsupportedMedia(f"{label} is damaged: its Matroska header cannot be read.") from exc
    if segment_id != 0x18538067:
        raise UnsupportedMedia(f"{label} is damaged: its Matroska header is not followed by a Segment.")
    # An unknown size (-1) is what live recorders write; ffmpeg then reads to the end.
    if segment_size >= 0 and pos + segment_size > size:
        raise _truncated(label, size, pos + segment_size, "Matroska segment")


# --- probing ------------------------------------------------------------------


@dataclass(frozen=True)
class _H264Sps:
    profile_idc: int
    chroma_format_idc: int
    bit_depth: int
    transform_bypass: bool


_H264_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_H264_BROWSER_PROFILES = frozenset({66, 77, 88, 100})  # Baseline, Main, Extended, High
_PIX_420_8BIT = frozenset({b"I420", b"IYUV", b"YV12", b"NV12"})

_CODEC_BY_FOURCC = {
    "H264": "h264", "AVC1": "h264", "X264": "h264", "DAVC": "h264", "AVC3": "h264",
    "HEVC": "hevc", "HVC1": "hevc", "HEV1": "hevc", "H265": "hevc", "X265": "hevc",
    "VP80": "vp8", "VP8": "vp8", "VP90": "vp9", "VP9": "vp9", "AV01": "av1", "AV1": "av1",
    "MP4V": "mpeg4", "FMP4": "mpeg4", "XVID": "mpeg4", "DIVX": "mpeg4", "DX50": "mpeg4",
    "MJPG": "mjpeg", "MJPEG": "mjpeg", "JPEG": "mjpeg", "AVDJ": "mjpeg",
    "FFV1": "ffv1", "HFYU": "huffyuv", "FFVH": "ffvhuff", "LAGS": "lagarith",
    "MPNG": "png", "PNG": "png", "PNG1": "png",
    "": "rawvideo", "DIB": "rawvideo", "RGB": "rawvideo", "RAW": "rawvideo", "I420": "rawvideo",
    "IYUV": "rawvideo", "YV12": "rawvideo", "Y800": "rawvideo", "Y8": "rawvideo", "GREY": "rawvideo",
    "YUY2": "rawvideo", "UYVY": "rawvideo", "2VUY": "rawvideo", "V210": "rawvideo", "BGR": "rawvideo",
}
_LOSSLESS_CODECS = frozenset(
    {"ffv1", "rawvideo", "huffyuv", "ffvhuff", "utvideo", "magicyuv", "lagarith", "png"}
)


def probe(path: Path | str, *, name: str | None = None) -> VideoProperties:
    """Video properties of ``path``; :class:`UnsupportedMedia` if it is truncated or undecodable.

    ``name`` (the researcher's file name) is only used in messages.
    """
    path = Path(path)
    label = _display_name(name or path.name)
    sniffed = _sniff_path(path, label)
    _check_structure(path, sniffed.kind, label)
    with _capture(path, label) as cap:
        fps = cap.get(cv2.CAP_PROP_FPS)
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fourcc = _fourcc_text(cap.get(cv2.CAP_PROP_FOURCC))
        pix_fmt = _fourcc_bytes(cap.get(cv2.CAP_PROP_CODEC_PIXEL_FORMAT))
        codec = _codec_name(fourcc)
        sps = _h264_sps(path, cap) if codec == "h264" else None
        _first_frame(cap, label)
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
        lossless=codec in _LOSSLESS_CODECS or bool(sps and sps.transform_bypass),
        browser_playable=_browser_playable(codec, sniffed, pix_fmt, sps),
        bit_rate=round(path.stat().st_size * 8 / duration),
    )


def _browser_playable(codec: str, sniffed: _Sniffed, pix_fmt: bytes | None, sps: _H264Sps | None) -> bool:
    if codec == "h264" and sniffed.kind == "mp4":
        if sps is not None:
            return (sps.profile_idc in _H264_BROWSER_PROFILES and sps.chroma_format_idc == 1
                    and sps.bit_depth == 8)
        return pix_fmt in _PIX_420_8BIT
    if codec in ("vp8", "vp9", "av1") and sniffed.subtype == "webm":
        return pix_fmt is None or pix_fmt in _PIX_420_8BIT
    return False


@contextmanager
def _capture(path: Path, label: str) -> Iterator[cv2.VideoCapture]:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise UnsupportedMedia(
                f"{label} cannot be opened as a video: its data is damaged or uses a codec we cannot decode."
            )
        yield cap
    finally:
        cap.release()


def _first_frame(cap: cv2.VideoCapture, label: str) -> np.ndarray:
    ok, frame = cap.read()
    if not ok or frame is None:
        raise UnsupportedMedia(f"{label} cannot be decoded: not even its first frame could be read.")
    return frame


def _fourcc_bytes(value: float) -> bytes | None:
    code = int(value)
    return None if code <= 0 else code.to_bytes(4, "little")


def _fourcc_text(value: float) -> str:
    raw = _fourcc_bytes(value) or b""
    return raw.decode("latin-1").replace("\x00", "").strip()


def _codec_name(fourcc: str) -> str:
    upper = fourcc.upper()
    if upper in _CODEC_BY_FOURCC:
        return _CODEC_BY_FOURCC[upper]
    if upper[:2] in ("UL", "UQ", "UM"):
        return "utvideo"
    if upper[:2] in ("M8", "M0", "M2"):
        return "magicyuv"
    return fourcc.lower() or "rawvideo"


def _h264_sps(path: Path, cap: cv2.VideoCapture) -> _H264Sps | None:
    """The first SPS, from the codec extradata (MP4/MKV) or else the first packet (AVI)."""
    index = int(cap.get(cv2.CAP_PROP_CODEC_EXTRADATA_INDEX))
    ok, extradata = cap.retrieve(None, index) if index > 0 else (False, None)
    sps = _sps_from(bytes(extradata.ravel())) if ok and extradata is not None else None
    if sps is None:
        packets = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        try:
            packets.set(cv2.CAP_PROP_FORMAT, -1)  # raw, undecoded packets
            ok, packet = packets.read()
            sps = _sps_from(bytes(packet.ravel())) if ok and packet is not None else None
        finally:
            packets.release()
    return sps


def _sps_from(data: bytes) -> _H264Sps | None:
    if data[:1] == b"\x01" and len(data) > 8 and data[5] & 0x1F:  # avcC record
        length = int.from_bytes(data[6:8], "big")
        return _parse_sps(data[8:8 + length])
    for nal in re.split(b"\x00\x00\x01", data):
        if nal and nal[0] & 0x1F == 7:
            return _parse_sps(nal)
    return None


def _parse_sps(nal: bytes) -> _H264Sps | None:
    rbsp = nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")  # drop emulation-prevention bytes
    if len(rbsp) < 4:
        return None
    bits = _Bits(rbsp[3:])
    profile = rbsp[0]
    try:
        bits.ue()  # seq_parameter_set_id
        chroma, depth, bypass = 1, 8, False
        if profile in _H264_HIGH_PROFILES:
            chroma = bits.ue()
            if chroma == 3:
                bits.u1()  # separate_colour_plane_flag
            depth = bits.ue() + 8
            bits.ue()  # bit_depth_chroma_minus8
            bypass = bool(bits.u1())
    except IndexError:
        return None
    return _H264Sps(profile, chroma, depth, bypass)


class _Bits:
    """Just enough of an H.264 bit reader: single bits and Exp-Golomb codes."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def u1(self) -> int:
        byte = self._data[self._pos >> 3]
        bit = (byte >> (7 - (self._pos & 7))) & 1
        self._pos += 1
        return bit

    def ue(self) -> int:
        zeros = 0
        while self.u1() == 0:
            zeros += 1
            if zeros > 31:
                raise IndexError("bad Exp-Golomb code")
        value = 0
        for _ in range(zeros):
            value = (value << 1) | self.u1()
        return (1 << zeros) - 1 + value


def _count_packets(path: Path) -> int | None:
    """Video packets counted by demuxing with stream copy: no decoding, one read of the file."""
    cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0",
           "-c", "copy", "-f", "null", "-", "-progress", "pipe:1", "-nostats"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    frames = re.findall(r"^frame=(\d+)$", out, re.MULTILINE)
    return int(frames[-1]) if frames else None


# --- validation -----------------------------------------------------------------


def validate(path: Path | str, original_name: str, *, max_bytes: int) -> ContainerInfo:
    """Size limit, extension allow-list, magic bytes, structure, and one decoded frame."""
    path = Path(path)
    label = _display_name(original_name)
    size = path.stat().st_size
    if size > max_bytes:
        raise FileTooLarge(f"{label} is {human_bytes(size)}, over the {human_bytes(max_bytes)} upload limit.")
    info = sniff_container(path, original_name)
    _check_structure(path, info.kind, label)
    with _capture(path, label) as cap:
        _first_frame(cap, label)
    return info


def needs_preview(video: VideoProperties, container: ContainerInfo) -> bool:
    """True when a browser cannot play the original, so an H.264 proxy is needed."""
    return not (video.browser_playable and container.content_type in _BROWSER_CONTENT_TYPES)


# --- thumbnail ------------------------------------------------------------------

_THUMBNAIL_SAMPLES = (0.1, 0.2, 0.3, 0.4, 0.5)
"""Where to look, in order: past fade-ins and the subject settling, before the recording
winds down. The first usable frame wins: each seek decodes from the previous keyframe,
which is costly in long-GOP H.264 and in noisy lossless files."""
_MIN_MEAN, _MAX_MEAN, _MIN_STD = 24.0, 235.0, 10.0
_USABLE = 1000.0  # score bonus of a frame that is neither dark, blown out nor flat


def make_thumbnail(path: Path | str, out_path: Path | str, *, max_side: int = 320,
                   name: str | None = None) -> Path:
    """A JPEG of a representative frame (not a black or flat one), at most ``max_side`` px."""
    path, out_path = Path(path), Path(out_path)
    label = _display_name(name or path.name)
    with _capture(path, label) as cap:
        # The first frame is only the fallback: recordings often open on a black
        # sensor or on the subject still settling in.
        best = _first_frame(cap, label)
        best_score = -1.0
        total = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 1)
        for position in dict.fromkeys(int(total * f) for f in _THUMBNAIL_SAMPLES):
            if best_score >= _USABLE:
                break
            cap.set(cv2.CAP_PROP_POS_FRAMES, position)
            ok, frame = cap.read()
            if ok and frame is not None and (score := _frame_score(frame)) > best_score:
                best, best_score = frame, score
    scale = max_side / max(best.shape[:2])
    if scale < 1:
        best = cv2.resize(best, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".jpg", best, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise PulseVaultError(f"The thumbnail of {label} could not be encoded.")
    out_path.write_bytes(encoded.tobytes())
    return out_path


def _frame_score(frame: np.ndarray) -> float:
    """Contrast, preferring mid brightness; black, blown-out or flat frames score below any other."""
    small = cv2.resize(frame, (64, 48), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    mean, std = float(gray.mean()), float(gray.std())
    usable = _MIN_MEAN <= mean <= _MAX_MEAN and std >= _MIN_STD
    return (_USABLE if usable else 0.0) + std * (1 - abs(mean - 128) / 256)


# --- preview proxy --------------------------------------------------------------


def preview_size(width: int, height: int) -> tuple[int, int]:
    """Fit inside 1280x720 (or 720x1280), keep the aspect, even sides (yuv420p needs them)."""
    long_side, short_side = max(width, height), min(width, height)
    scale = min(1.0, PREVIEW_MAX_LONG_SIDE / long_side, PREVIEW_MAX_SHORT_SIDE / short_side)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def make_preview(path: Path | str, out_path: Path | str, *,
                 progress: Callable[[float], None] | None = None, name: str | None = None) -> Path:
    """An H.264 yuv420p MP4 (+faststart, at most 720p, no audio) a browser plays.

    ``progress`` gets the fraction done (0..1) as ffmpeg reports it; if it raises
    (say, the user cancelled), ffmpeg is stopped, the partial file removed and the
    exception propagates.
    """
    path, out_path = Path(path), Path(out_path)
    label = _display_name(name or path.name)
    with _capture(path, label) as cap:
        fps, frames = cap.get(cv2.CAP_PROP_FPS), cap.get(cv2.CAP_PROP_FRAME_COUNT)
    duration = frames / fps if fps > 0 and frames > 0 else 0.0
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".part")
    try:
        _run_ffmpeg(_preview_command(path, partial), duration, progress, label)
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    return out_path


def _scale_filter() -> str:
    """:func:`preview_size` as an ffmpeg expression: ffmpeg evaluates it on the frames
    after applying any rotation in the file, whose sides OpenCV may report swapped."""
    factor = f"min(1,min({PREVIEW_MAX_LONG_SIDE}/max(iw,ih),{PREVIEW_MAX_SHORT_SIDE}/min(iw,ih)))"
    side = "max(2,trunc(trunc({0}*{1})/2)*2)"
    return (f"scale=w='{side.format('iw', factor)}':h='{side.format('ih', factor)}'"
            ":flags=bilinear:out_range=tv,setsar=1")


def _preview_command(src: Path, dst: Path) -> list[str]:
    return [
        _ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y",
        "-i", str(src),
        "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1",
        # out_range=tv: full-range sources (MJPEG) would otherwise come out yuvj420p.
        "-vf", _scale_filter(),
        "-c:v", "libx264", "-preset", PREVIEW_PRESET, "-crf", str(PREVIEW_CRF),
        "-pix_fmt", "yuv420p", "-movflags", "+faststart",
        "-f", "mp4", "-progress", "pipe:1", "-nostats", str(dst),
    ]


def _run_ffmpeg(cmd: list[str], duration: float, progress: Callable[[float], None] | None,
                label: str) -> None:
    # stderr goes to a file, not a pipe: reading only stdout while ffmpeg fills an
    # unread stderr pipe would deadlock.
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True)
        except OSError as exc:
            raise PulseVaultError(f"The preview of {label} could not be made: ffmpeg did not start.") from exc
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                fraction = _progress_fraction(line, duration)
                if progress is not None and fraction is not None:
                    progress(fraction)
            returncode = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if returncode != 0:
            errors.seek(0)
            tail = _stderr_summary(errors.read().decode("utf-8", "replace"))
            raise UnsupportedMedia(f"The preview of {label} could not be made: ffmpeg says {tail}")


def _progress_fraction(line: str, duration: float) -> float | None:
    key, _, value = line.strip().partition("=")
    if key == "progress" and value == "end":
        return 1.0
    if key == "out_time_us" and value.isdigit() and duration > 0:
        return min(1.0, int(value) / 1e6 / duration)
    return None


def _stderr_summary(text: str, lines: int = 3) -> str:
    """The last few ffmpeg error lines, with file paths cut to their base names."""
    tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    summary = " / ".join(re.sub(r"(?:/[^/\s:'\"]+)+/([^/\s:'\"]+)", r"\1", line) for line in tail)
    return (summary[:400] or "an unknown error") + ("" if summary.endswith(".") else ".")


@functools.cache
def _ffmpeg() -> str:
    import imageio_ffmpeg  # deferred: finding the binary touches the file system

    return imageio_ffmpeg.get_ffmpeg_exe()


# --- small helpers ----------------------------------------------------------------


def _read_head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(SNIFF_BYTES)


def _extension(name: str) -> str:
    base = _base_name(name)
    return base.rsplit(".", 1)[1].lower() if "." in base.strip(".") else ""


def _base_name(name: str) -> str:
    return re.split(r"[\\/]", name)[-1]


def _display_name(name: str) -> str:
    """The researcher's own file name (no folders), shortened and without control characters."""
    base = "".join(ch for ch in _base_name(name) if ch.isprintable()) or "The file"
    return base if len(base) <= 80 else base[:60] + "…" + base[-15:]


def _article(label: str) -> str:
    return "an" if label.startswith(("A", "E", "I", "O", "MP4", "M4V")) else "a"
