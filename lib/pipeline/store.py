"""Store a new local recording: size limit → ``pending`` row reserved against the quota → original,
thumbnail and proxy through presigned URLs → verify (HEAD size, checksum) → ``ready``.

The reservation (``ServerRecords.reserve``) is the quota check: atomic in the database, so two uploads
at once cannot both pass a check only one of them fits, and the row holds its size from before the
first byte is sent until it fails or is deleted.

Failure rules:

* Anything that goes wrong while sending aborts the transfer (lib.transfer
  aborts a multipart upload), deletes whatever objects of this record reached
  the bucket, marks the row ``failed`` with the reason, and re-raises. The local
  copy is kept so the researcher can retry; a retry is a new :class:`Attempt`
  that ``replaces`` the failed one, which is cleaned up first.
* If the metadata store becomes unreachable after the bytes are in the bucket
  (``mark_ready`` fails), the objects are **removed** and the row is marked
  ``failed`` if the store answers again, else it stays ``pending`` pointing at
  nothing. We chose removal over leaving the objects for reconciliation because
  the researcher is at the machine with the local copy and a Retry button: a
  clean slate and a clear message beat a half-finished record that only an
  admin's reconciliation can finish. A leftover ``pending`` row holds no bytes,
  and the Usage page's reconciliation flags it once it is older than
  ``settings.stale_pending_s``. Nothing is ever ``ready`` without its bytes,
  and no bytes sit in the bucket without a row.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lib.keys import new_record_id, record_keys
from lib.pipeline.backends import Backends
from lib.pipeline.check import PreparedRecording, check_recording
from lib.pipeline.cleanup import clean_up_failure, remove_unfinished
from lib.pipeline.limits import check_not_duplicate, check_size
from lib.pipeline.progress import ProgressCallback, Reporter, Step
from lib.pipeline.send import check_unchanged, mark_ready, send_files, verify
from lib.records import FileRecord, NewRecord, ResearchFields


@dataclass(frozen=True)
class Attempt:
    """One try at storing a recording: the row it writes, and what it replaces."""

    record_id: str = field(default_factory=new_record_id)
    """A UUID the caller knows beforehand, so it knows which row a failed attempt left."""
    replaces: str | None = None
    """An earlier failed attempt at this recording (Retry): its row, and any objects it left, go first."""
    allow_duplicate: bool = False
    """The researcher chose to keep a second copy of bytes already stored."""


def store_recording(prepared: PreparedRecording, research: ResearchFields, backends: Backends,
                    attempt: Attempt | None = None, *, progress: ProgressCallback | None = None,
                    cancel: threading.Event | None = None) -> FileRecord:
    """Store a checked local recording and return its ``ready`` record (module docstring for failures)."""
    attempt = attempt or Attempt()
    report = Reporter(progress)
    check_unchanged(prepared)
    check_size(prepared.original_name, prepared.size_bytes, backends.settings.max_upload_bytes)
    if not attempt.allow_duplicate:
        check_not_duplicate(prepared.original_name, prepared.sha256, backends.repo, report, backends.study_id)
    if attempt.replaces:
        remove_unfinished(attempt.replaces, backends)
    report.step(Step.RECORD)
    record = backends.server.reserve(_new_record(prepared, research, backends, attempt.record_id),
                                     backends.settings.quota_bytes, backends.settings.study_quota_bytes)
    owned = [k for k in (record.s3_key, record.thumbnail_key, record.preview_key) if k]
    try:
        send_files(prepared, record, backends, report, cancel, with_original=True)
        report.step(Step.VERIFY)
        verify(backends, record, prepared, etag=None, outcome="so the upload was removed. Retry.")
    except BaseException as exc:  # also Streamlit's rerun/stop: never leave half a recording behind
        clean_up_failure(record, owned, exc, backends)
        raise
    return mark_ready(prepared, record, owned, backends, report, in_bucket=False)


def _new_record(prepared: PreparedRecording, research: ResearchFields, backends: Backends,
                record_id: str) -> NewRecord:
    keys = record_keys(backends.owner, record_id, prepared.container.extension, datetime.now(UTC),
                       backends.study_id)
    return NewRecord(
        id=record_id, s3_key=keys.original, bucket=backends.store.bucket, original_name=prepared.original_name,
        content_type=prepared.container.content_type, size_bytes=prepared.size_bytes, research=research,
        sha256=prepared.sha256, thumbnail_key=keys.thumbnail,
        preview_key=keys.preview if prepared.preview else None, video=prepared.video, study_id=backends.study_id,
    )


def process_upload(path: Path | str, name: str, research: ResearchFields, backends: Backends, *,
                   allow_duplicate: bool = False, analyse: bool = True,
                   progress: ProgressCallback | None = None) -> FileRecord:
    """Check and store one local file in one call (scripts, the demo sample); returns the ready record.

    Derivatives live in a temporary folder removed at the end; the source file is never modified
    or removed. A duplicate raises :class:`DuplicateRecording` unless ``allow_duplicate``.
    """
    workdir = Path(tempfile.mkdtemp(prefix="pulsevault-prepare-"))
    try:
        prepared = check_recording(path, name, max_bytes=backends.settings.max_upload_bytes, workdir=workdir,
                                   progress=progress, analyse=analyse, band=backends.settings.hr_band_hz)
        return store_recording(prepared, research, backends, Attempt(allow_duplicate=allow_duplicate),
                               progress=progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
