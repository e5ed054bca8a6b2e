"""Just enough EBML (the Matroska/WebM byte format) to read a header: element ids and sizes."""

from __future__ import annotations


def doctype(head: bytes) -> str | None:
    """The DocType string of the EBML header at the start of ``head``."""
    try:
        pos = 4
        size, pos = vint(head, pos)
        end = min(pos + size, len(head))
        while pos < end:
            element_id, pos = element(head, pos)
            length, pos = vint(head, pos)
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


def element(data: bytes, pos: int) -> tuple[int, int]:
    """An element id at ``pos`` (marker bits kept, as the spec writes ids) and the position after it."""
    length = _vint_length(data[pos])
    return int.from_bytes(data[pos:pos + length], "big"), pos + length


def vint(data: bytes, pos: int) -> tuple[int, int]:
    """An EBML size; the all-ones value ("unknown size") comes back as -1."""
    length = _vint_length(data[pos])
    if pos + length > len(data):
        raise IndexError("EBML size runs past the data")
    value = int.from_bytes(data[pos:pos + length], "big") & ((1 << (7 * length)) - 1)
    return (-1 if value == (1 << (7 * length)) - 1 else value), pos + length
