"""Give freed heap memory back to the operating system.

A long-running server frees large buffers (a dropped recording Streamlit held,
a check's results) in many threads; glibc keeps freed memory in per-thread
arenas and returns little of it by itself, so the process's RSS ratchets up
over a day of uploads although nothing is in use. ``malloc_trim`` returns
the free pages of every arena. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)


def _load_malloc_trim() -> ctypes._CFuncPtr | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def trim_heap() -> bool:
    """Return free heap pages to the system; True if the C library could (glibc) and released some."""
    if _MALLOC_TRIM is None:
        return False
    return bool(_MALLOC_TRIM(0))
