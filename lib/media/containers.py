"""What a file is: the extension allow-list, content types and magic-byte sniffing.

A file must be named for what its bytes are (``.mp4``/``.mov``/``.m4v`` for ISO-BMFF, ``.avi`` for
RIFF AVI, ``.mkv``/``.webm`` for Matroska). A WebM DocType may be named ``.mkv`` (WebM is a Matroska
subset), not vice versa.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lib.errors import UnsupportedMedia
from lib.keys import extension_of
from lib.media import ebml

ALLOWED_EXTENSIONS = ("mp4", "mov", "m4v", "avi", "mkv", "webm")

SNIFF_BYTES = 4096
"""Enough for every magic number and the EBML header with its DocType."""

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
BROWSER_CONTENT_TYPES = frozenset({"video/mp4", "video/quicktime", "video/x-m4v", "video/webm"})
"""Content types a browser's <video> element accepts at all (the codec inside decides the rest)."""
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
class Sniffed:
    """The container the first bytes announce."""

    kind: str
    subtype: str  # the extension the bytes call for: mp4/mov/m4v/avi/mkv/webm


def check_extension(original_name: str) -> str:
    """The name's extension if the allow-list has it; otherwise UnsupportedMedia saying what is accepted."""
    ext = extension_of(original_name)
    if ext not in _EXTENSION_KIND:
        label, allowed = display_name(original_name), ", ".join(ALLOWED_EXTENSIONS)
        if not ext:
            raise UnsupportedMedia(f"{label} has no file extension; accepted videos: {allowed}.")
        raise UnsupportedMedia(f"{label}: .{ext} files are not accepted; accepted videos: {allowed}.")
    return ext


def sniff_container(path: Path | str, original_name: str) -> ContainerInfo:
    """Check that the bytes of ``path`` are the container its name claims."""
    path = Path(path)
    label = display_name(original_name)
    ext = check_extension(original_name)
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


def _content_type(sniffed: Sniffed, ext: str) -> str:
    # The bytes decide where they are more specific than the name: a .mkv holding
    # WebM is served as video/webm so a browser will play it.
    if sniffed.kind == "matroska":
        return CONTENT_TYPES[sniffed.subtype]
    return CONTENT_TYPES[ext]


def _sniff(head: bytes) -> Sniffed | None:
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Sniffed("avi", "avi")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return Sniffed("mp4", "mov")
        if brand.startswith(b"M4V"):
            return Sniffed("mp4", "m4v")
        return Sniffed("mp4", "mp4")
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return Sniffed("mp4", "mov")  # classic QuickTime, from before 'ftyp' existed
    if head[:4] == b"\x1a\x45\xdf\xa3":
        doctype = ebml.doctype(head)
        if doctype == "webm":
            return Sniffed("matroska", "webm")
        if doctype == "matroska":
            return Sniffed("matroska", "mkv")
    return None


def sniff_path(path: Path, label: str) -> Sniffed:
    """The container of ``path`` whatever its name says; refused when it is not a video we take."""
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


# --- names --------------------------------------------------------------------


def _read_head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(SNIFF_BYTES)


def _base_name(name: str) -> str:
    return re.split(r"[\\/]", name)[-1]


def display_name(name: str) -> str:
    """The researcher's own file name (no folders), shortened and without control characters."""
    base = "".join(ch for ch in _base_name(name) if ch.isprintable()) or "The file"
    return base if len(base) <= 80 else base[:60] + "…" + base[-15:]


def _article(label: str) -> str:
    return "an" if label.startswith(("A", "E", "I", "O", "MP4", "M4V")) else "a"
