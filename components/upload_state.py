"""The Upload page's per-session state: one :class:`UploadItem` per dropped file.

Everything lives in ``st.session_state`` under ``pv_user_`` keys, so signing
out forgets it; the local copies live in a :class:`lib.pipeline.Workspace`
whose folder is removed when the session's state is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import streamlit as st

from lib.direct_upload import DirectUpload
from lib.errors import LocalDiskError
from lib.pipeline import OriginalInBucket, PreparedRecording, Workspace, discard
from lib.records import FileRecord

ITEMS_KEY = "pv_user_upload_items"
QUEUE_KEY = "pv_user_upload_queue"
WORKSPACE_KEY = "pv_user_upload_workspace"


class UploadedFileLike(Protocol):
    file_id: str
    name: str
    size: int

    def read(self, size: int = -1) -> bytes: ...
    def seek(self, offset: int, whence: int = 0) -> int: ...


@dataclass(frozen=True)
class UploadItem:
    """One dropped file, from local copy to stored record."""

    file_id: str
    given_name: str
    size_bytes: int
    local_path: Path | None = None
    prepared: PreparedRecording | None = None
    error: str | None = None
    """Why the file cannot be accepted (or could not be checked)."""
    error_retryable: bool = False
    """The check itself failed (e.g. the metadata store was unreachable), not the file."""
    record: FileRecord | None = None
    """The stored, ready record once uploaded."""
    failure: str | None = None
    """Why the last upload attempt failed; Retry is offered."""
    failed_record_id: str | None = None
    duplicate_note: str | None = None
    allow_duplicate: bool = False
    dismissed: str | None = None
    """Set when the researcher discarded or skipped the file: the word to show in the summary."""
    direct: DirectUpload | None = None
    """A browser upload (Large files tab): the original is already in the bucket, under a pending row."""
    in_bucket: OriginalInBucket | None = None
    """Set once a browser upload was fetched to ``local_path``: what the pipeline finishes it from."""

    @property
    def status(self) -> str:
        if self.record is not None:
            return "Ready"
        if self.dismissed:
            return self.dismissed
        if self.error:
            return "Not accepted" if not self.error_retryable else "Check failed"
        if self.failure:
            return "Upload failed"
        if self.duplicate_note and not self.allow_duplicate:
            return "Already stored"
        return "Waiting" if self.prepared is not None else "Checking"

    @property
    def uploadable(self) -> bool:
        """Checked, not stored yet, not dismissed, and not a duplicate the researcher has not allowed."""
        return (self.prepared is not None and self.record is None and not self.dismissed and not self.error
                and (self.duplicate_note is None or self.allow_duplicate))

    @property
    def display_name(self) -> str:
        if self.record is not None:
            return self.record.original_name
        return self.prepared.original_name if self.prepared else self.given_name


def workspace() -> Workspace:
    if WORKSPACE_KEY not in st.session_state:
        st.session_state[WORKSPACE_KEY] = Workspace()
    return st.session_state[WORKSPACE_KEY]


def items() -> dict[str, UploadItem]:
    return st.session_state.setdefault(ITEMS_KEY, {})


def put(item: UploadItem) -> UploadItem:
    items()[item.file_id] = item
    return item


def sync(files: Iterable[UploadedFileLike]) -> list[UploadItem]:
    """Add newly dropped files (copied to local disk once), forget removed ones; return current items.

    A stored file stays listed (for the summary) after it is removed from the
    uploader, and so does a failed one: its local copy is what Retry (here or
    on My files) needs, and leaving the page empties the uploader. Browser
    uploads were never in the uploaders: they stay until stored or dismissed.
    """
    current = items()
    seen: set[str] = set()
    for file in files:
        seen.add(file.file_id)
        if file.file_id not in current:
            current[file.file_id] = _copied(file)
    for file_id in [f for f, item in current.items()
                    if f not in seen and item.record is None and item.failure is None and item.direct is None]:
        forget(file_id)
    return list(current.values())


def _copied(file: UploadedFileLike) -> UploadItem:
    """A new item with its local copy, or with the reason the copy could not be written."""
    try:
        path = workspace().save(file.file_id, file, file.name)
    except LocalDiskError as exc:
        return UploadItem(file.file_id, file.name, file.size, error=str(exc))
    return UploadItem(file.file_id, file.name, file.size, local_path=path)


def forget(file_id: str) -> None:
    item = items().pop(file_id, None)
    if item is not None:
        release_files(item)
    unqueue(file_id)


def release_files(item: UploadItem) -> None:
    """Remove the item's local copy and derivatives."""
    if item.prepared is not None:
        discard(item.prepared)
    workspace().remove(item.file_id)


def dismiss(file_id: str, word: str) -> None:
    """Discard (or skip) a file: its local files go, the summary keeps a line for it."""
    item = items().get(file_id)
    if item is None:
        return
    release_files(item)
    put(replace(item, dismissed=word, prepared=None, local_path=None))
    unqueue(file_id)


def recheck(file_id: str) -> None:
    """Run the checks again after a failure that was not the file's fault."""
    item = items().get(file_id)
    if item is not None:
        put(replace(item, error=None, error_retryable=False))


def allow_duplicate(file_id: str) -> None:
    item = items().get(file_id)
    if item is not None:
        put(replace(item, allow_duplicate=True))
        queue([file_id])


def queue(file_ids: Iterable[str]) -> None:
    pending = st.session_state.setdefault(QUEUE_KEY, [])
    pending.extend(f for f in file_ids if f not in pending)


def unqueue(file_id: str) -> None:
    pending = st.session_state.get(QUEUE_KEY, [])
    if file_id in pending:
        pending.remove(file_id)


def take_queued(file_id: str) -> bool:
    """True (once) if an upload of this file was asked for; it leaves the queue before it starts."""
    pending = st.session_state.get(QUEUE_KEY, [])
    if file_id not in pending:
        return False
    pending.remove(file_id)
    return True


def queued() -> tuple[str, ...]:
    return tuple(st.session_state.get(QUEUE_KEY, ()))
