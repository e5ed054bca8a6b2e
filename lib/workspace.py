"""Local copies: a browser session's private temporary folder, and clear messages when writing fails.

The Upload page copies every dropped file here once (Streamlit holds uploads in
memory); the checks write their thumbnail and preview beside it; the copy stays
until the recording is stored, discarded or the session ends, so Retry works.
"""

from __future__ import annotations

import errno
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from lib.errors import LocalDiskError, PulseVaultError
from lib.keys import extension_of

CHUNK_BYTES = 1024 * 1024
"""Read/write block for checksums and local copies: large enough to be fast, small enough to stream."""


class Workspace:
    """A private temporary folder for one browser session's recordings.

    Each file gets a slot (a sub-folder named after its upload job) holding the
    local copy and its derivatives. The folder is removed by :meth:`close`, or
    when the workspace is garbage-collected (say, its session ended), or at exit.
    """

    def __init__(self, parent: Path | str | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pulsevault-upload-", dir=parent))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.root), True)

    def slot(self, slot_id: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", slot_id)[:80] or "file"
        return self.root / safe

    def save(self, slot_id: str, stream: BinaryIO, original_name: str) -> Path:
        """Copy ``stream`` into the slot in blocks and return the local path."""
        folder = self.slot(slot_id)
        target = folder / f"original.{extension_of(original_name) or 'bin'}"
        if hasattr(stream, "seek"):
            stream.seek(0)
        try:
            with local_writes(original_name):
                folder.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as out:
                    shutil.copyfileobj(stream, out, CHUNK_BYTES)
        except LocalDiskError:
            self.remove(slot_id)  # a half-written copy is of no use to anyone
            raise
        return target

    def remove(self, slot_id: str) -> None:
        shutil.rmtree(self.slot(slot_id), ignore_errors=True)

    def close(self) -> None:
        self._finalizer()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"


@contextmanager
def local_writes(name: str) -> Iterator[None]:
    """Turn a failed write of a temporary file (disk full, permissions) into a clear message."""
    try:
        yield
    except PulseVaultError:
        raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise LocalDiskError(
                f"The server ran out of disk space while making the temporary copy of {name}. "
                "Free some space on the PulseVault server (or ask its administrator), then try again."
            ) from None
        raise LocalDiskError(
            f"The server could not write its temporary copy of {name} ({exc.strerror or 'write error'}). "
            "Try again; if it keeps happening, ask the server's administrator."
        ) from None
