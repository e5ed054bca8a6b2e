"""Human units for figures shown to researchers: the one table of byte units, durations, missing values.

Sizes are binary multiples labelled as such (IEC: 1 KiB = 1,024 bytes, 1 MiB = 1,024 KiB, ...), the way
the limits in the settings are counted (``max_upload_mb = 2048`` is 2 GiB) and S3's part limits are
written. Every size the app shows comes from here: pages, charts, messages, and the browser uploader
(which is handed :data:`BYTE_UNITS` and :data:`BYTE_STEP`).
"""

from __future__ import annotations

MISSING = "—"
"""What a table cell, metric or message shows for a value that is not there (never ``None``)."""
BYTE_STEP = 1024
"""Bytes in a KiB, KiB in a MiB, and so on."""
BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
"""Byte units, smallest first: unit ``i`` is ``BYTE_STEP ** i`` bytes."""


def byte_unit(largest: int | float) -> tuple[str, int]:
    """The unit that keeps ``largest`` between 1 and 1,024 (bytes for less than 1 KiB): its name and size."""
    for power in range(len(BYTE_UNITS) - 1, 0, -1):
        if abs(largest) >= BYTE_STEP**power:
            return BYTE_UNITS[power], BYTE_STEP**power
    return BYTE_UNITS[0], 1


def human_bytes(n: int | float | None) -> str:
    """``1536`` → ``"1.5 KiB"``; ``None`` → ``"—"``."""
    if n is None:
        return MISSING
    name, size = byte_unit(n)
    return f"{int(n)} B" if size == 1 else f"{n / size:.1f} {name}"


def human_duration(seconds: float | None) -> str:
    """``75.4`` → ``"1:15"``; ``3725`` → ``"1:02:05"``."""
    if seconds is None:
        return MISSING
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def counted(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless it is one: "1 recording", "3 recordings"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
