"""Is the file whole? Truncation and index checks for MP4, AVI and Matroska, by seeks, not full reads.

Truncated files (a header promising more bytes than the file has, an MP4 without its ``moov`` index) and
AVIs whose index is missing or points at the wrong bytes are refused, even when some frames would
decode: that is what an interrupted recording or copy looks like, frame timing cannot be trusted, and
the message says how to repair it (``ffmpeg -i in -c copy out`` rebuilds it).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lib.errors import UnsupportedMedia
from lib.media import ebml
from lib.media.containers import SNIFF_BYTES
from lib.units import human_bytes


def check_structure(path: Path, kind: str, label: str) -> None:
    """Refuse a truncated file or one with a broken index; ``kind`` is what its bytes say it is."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        if kind == "mp4":
            _check_mp4(fh, size, label)
        elif kind == "avi":
            _check_avi(fh, size, label)
        else:
            _check_matroska(fh, size, label)


def _truncated(label: str, size: int, needed: int) -> UnsupportedMedia:
    """Said in the researcher's words: the container's own names for its parts ('moov', 'RIFF') mean nothing
    to them."""
    return UnsupportedMedia(
        f"{label} is truncated: it ends at {human_bytes(size)}, but the file itself says it is at least "
        f"{human_bytes(needed)} long. The recording or copy was probably interrupted; "
        "copy it again from the recording machine."
    )


# --- MP4 ------------------------------------------------------------------------


def _check_mp4(fh: BinaryIO, size: int, label: str) -> None:
    offset, boxes = 0, set()
    while offset + 8 <= size:
        fh.seek(offset)
        box_size, box_type = struct.unpack(">I4s", fh.read(8))
        if box_size == 1:
            box_size = struct.unpack(">Q", fh.read(8))[0]
        elif box_size == 0:  # "runs to the end of the file": legal for the last box
            box_size = size - offset
        if box_size < 8:
            raise UnsupportedMedia(f"{label} is damaged: its structure gives a part of it an impossible size.")
        if offset + box_size > size:
            raise _truncated(label, size, offset + box_size)
        boxes.add(box_type)
        offset += box_size
    if b"moov" not in boxes:
        raise UnsupportedMedia(
            f"{label} has no index ('moov' box): the recording was not finalised (the recorder or "
            "copy stopped early), so its frames cannot be located. Copy it again from the source."
        )


# --- AVI ------------------------------------------------------------------------

_AVIF_HASINDEX = 0x10
_IDX1_SAMPLES = 16
"""Index entries spot-checked against the chunks they point at (seeks, not a full scan)."""


@dataclass(frozen=True)
class _AviLayout:
    """Where the parts of a RIFF AVI are: header flags, the frame data and its index."""

    flags: int  # the avih dwFlags
    has_odml: bool  # an OpenDML super index: ffmpeg reads it without idx1
    movi: int | None  # offset of the 'movi' fourcc
    idx1: tuple[int, int] | None  # (offset, length) of the idx1 entries


def _check_avi(fh: BinaryIO, size: int, label: str) -> None:
    fh.seek(4)
    riff_end = 8 + struct.unpack("<I", fh.read(4))[0]
    _check_riff_extensions(fh, size, riff_end, label)
    avi = _avi_layout(fh, riff_end)
    repair = f"Re-mux it with `ffmpeg -i {label} -c copy fixed.avi` to rebuild the index and upload that."
    if avi.movi is None:
        raise UnsupportedMedia(f"{label} is damaged: it has no video data ('movi' list).")
    if avi.idx1 is None:
        if avi.has_odml:
            return
        # AVIF_HASINDEX promised an index that never got written: the recorder stopped early.
        why = "the recording was probably not finalised" if avi.flags & _AVIF_HASINDEX else "it was never written"
        raise UnsupportedMedia(f"{label} has a broken index: its 'idx1' index is missing ({why}). {repair}")
    if not _idx1_points_at_chunks(fh, size, avi.movi, *avi.idx1):
        raise UnsupportedMedia(
            f"{label} has a broken index: its 'idx1' entries do not point at its frames. {repair}"
        )


def _riff_chunks(fh: BinaryIO, start: int, end: int) -> Iterator[tuple[int, bytes, int]]:
    """(offset, id, size) of each chunk from ``start`` to ``end``; the file is left after its header."""
    offset = start
    while offset + 8 <= end:
        fh.seek(offset)
        chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
        yield offset, chunk_id, chunk_size
        offset += 8 + chunk_size + (chunk_size & 1)


def _avi_layout(fh: BinaryIO, riff_end: int) -> _AviLayout:
    flags, has_odml, movi, idx1 = 0, False, None, None
    for offset, chunk_id, chunk_size in _riff_chunks(fh, 12, riff_end):
        if chunk_id == b"idx1":
            idx1 = (offset + 8, chunk_size)
        elif chunk_id != b"LIST":
            continue
        elif (list_type := fh.read(4)) == b"hdrl":
            hdrl = fh.read(min(max(chunk_size - 4, 0), 1 << 20))
            if hdrl[:4] == b"avih" and len(hdrl) >= 24:
                flags = struct.unpack("<I", hdrl[20:24])[0]
            has_odml = b"indx" in hdrl
        elif list_type == b"movi":
            movi = offset + 8
    return _AviLayout(flags, has_odml, movi, idx1)


def _check_riff_extensions(fh: BinaryIO, size: int, riff_end: int, label: str) -> None:
    """Recordings over 1 GB continue in 'RIFF AVIX' chunks (OpenDML); each must fit in the file."""
    end = riff_end
    while True:
        if end > size:
            raise _truncated(label, size, end)
        fh.seek(end + (end & 1))
        header = fh.read(8)
        if len(header) < 8 or header[:4] != b"RIFF":
            return
        end += (end & 1) + 8 + struct.unpack("<I", header[4:])[0]


def _idx1_points_at_chunks(fh: BinaryIO, size: int, movi: int, start: int, length: int) -> bool:
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


def _chunk_at(fh: BinaryIO, size: int, pos: int, ckid: bytes, length: int) -> bool:
    if pos < 0 or pos + 8 + length > size:
        return False
    fh.seek(pos)
    return fh.read(4) == ckid


# --- Matroska -------------------------------------------------------------------


def _check_matroska(fh: BinaryIO, size: int, label: str) -> None:
    head = fh.read(SNIFF_BYTES)
    try:
        header_size, pos = ebml.vint(head, 4)
        pos += header_size
        segment_id, pos = ebml.element(head, pos)
        segment_size, pos = ebml.vint(head, pos)
    except IndexError as exc:
        raise UnsupportedMedia(f"{label} is damaged: its Matroska header cannot be read.") from exc
    if segment_id != 0x18538067:
        raise UnsupportedMedia(f"{label} is damaged: its Matroska header is not followed by a Segment.")
    # An unknown size (-1) is what live recorders write; ffmpeg then reads to the end.
    if segment_size >= 0 and pos + segment_size > size:
        raise _truncated(label, size, pos + segment_size)
