"""Finish a recording whose original is already in the bucket (the browser sent it straight to S3,
:mod:`lib.direct_upload`), so its row ends up exactly like one :mod:`lib.pipeline.store` makes.

A check worker fetches the original through a signed link and runs the same checks
(:mod:`lib.checks`, driven by :func:`lib.uploads.check`); :func:`finish_in_bucket` sends only the
thumbnail and proxy, verifies (HEAD: the original's size, and that it is still the object that was
fetched and hashed) and marks the ``pending`` row ready.

Failure rules: a file that turns out not to be an acceptable video is deleted and its row marked
``failed`` with the reason (nothing of it may stay). Anything else never deletes the original: it
may be gigabytes the browser took an hour to send. Its thumbnail and proxy are deleted, its row
stays ``pending`` (no ``failed``: the row still points at good bytes), and the error tells the
researcher to Retry, which runs only this finishing step again; Discard
(:func:`lib.pipeline.cleanup.remove_unfinished`) removes the objects and then the row. An
abandoned one is flagged by the Usage page's stale-pending reconciliation after
``settings.stale_pending_s``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from lib.errors import PulseVaultError, ValidationError
from lib.keys import record_keys_of
from lib.pipeline.backends import Backends
from lib.pipeline.check import PreparedRecording
from lib.pipeline.cleanup import clean_up_failure
from lib.pipeline.limits import check_not_duplicate, check_size
from lib.pipeline.progress import ProgressCallback, Reporter, Step
from lib.pipeline.send import check_unchanged, mark_ready, send_files, verify
from lib.records import FileRecord, ResearchFields, Status
from lib.transfer import SHA256_METADATA

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OriginalInBucket:
    """An original that is already in the bucket, with the ``pending`` row that points at it."""

    record: FileRecord
    etag: str
    """The object's ETag when it was fetched: verify checks the bucket still holds those bytes."""


def finish_in_bucket(prepared: PreparedRecording, original: OriginalInBucket, research: ResearchFields,
                     backends: Backends, *, allow_duplicate: bool = False, progress: ProgressCallback | None = None,
                     cancel: threading.Event | None = None) -> FileRecord:
    """Send the derivatives, verify and mark the pending row ready; ``research`` updates the row.

    The row reserved its size against the quota when the browser started (:mod:`lib.direct_upload`),
    so only the size limit is checked again here.
    """
    report = Reporter(progress)
    repo = backends.repo
    check_unchanged(prepared)
    current = _still_pending(original, backends)
    if current.status is Status.READY:
        return current  # an earlier attempt got there (e.g. its answer was lost): nothing to do
    check_size(prepared.original_name, prepared.size_bytes, backends.settings.max_upload_bytes)
    if not allow_duplicate:
        check_not_duplicate(prepared.original_name, prepared.sha256, repo, report, backends.study_id)
    if research != current.research:  # edited on the card since the browser finished sending
        current = repo.update_research(current.id, research)
    record = _with_derivative_keys(current, prepared)
    owned = [k for k in (record.thumbnail_key, record.preview_key) if k]  # the original stays (docstring)
    try:
        send_files(prepared, record, backends, report, cancel, with_original=False)
        report.step(Step.VERIFY)
        verify(backends, record, prepared, etag=original.etag, outcome="Retry.")
        _tag_checksum(backends, record, prepared)
    except BaseException as exc:  # also Streamlit's rerun/stop
        clean_up_failure(record, owned, exc, backends, keep_pending=True)
        raise
    return mark_ready(prepared, record, owned, backends, report, in_bucket=True)


def _still_pending(original: OriginalInBucket, backends: Backends) -> FileRecord:
    current = backends.repo.get(original.record.id)
    if current.status is Status.FAILED:
        raise ValidationError(current.error or f"{current.original_name} could not be stored; upload it again.")
    return current


def _with_derivative_keys(record: FileRecord, prepared: PreparedRecording) -> FileRecord:
    """The row of an original already in the bucket, with its derivatives' keys beside the original."""
    keys = record_keys_of(record.s3_key)
    return replace(record, thumbnail_key=keys.thumbnail, preview_key=keys.preview if prepared.preview else None)


def _tag_checksum(backends: Backends, record: FileRecord, prepared: PreparedRecording) -> None:
    # Metadata cannot be added to an object after it is stored; a tag can. The row holds the digest
    # too, so a store that refuses tagging is not fatal.
    try:
        backends.store.put_tags(record.s3_key, {SHA256_METADATA: prepared.sha256}, owner=backends.space)
    except PulseVaultError as exc:
        log.info("upload: sha256 tag not set on record %s: %s", record.id, exc)
