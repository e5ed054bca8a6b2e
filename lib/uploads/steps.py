"""Run one step of an upload job and return the job's next state.

Each function takes a job, does the work through :mod:`lib.pipeline` and
answers with the job as it now is: failures a researcher can act on become the
job's state and message (nothing is raised for them), so every page that
drives a job shows the same outcome. Only what is not a failure of the upload
(Streamlit's rerun, a cancelled session) propagates, after the pipeline has
cleaned up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from lib.direct_upload import cancel_upload
from lib.errors import DuplicateRecording, JobStateError, NotFound, PulseVaultError, ValidationError
from lib.pipeline import (
    Backends,
    OriginalInBucket,
    PreparedRecording,
    ProgressCallback,
    Reporter,
    check_in_bucket,
    check_recording,
    discard,
    find_duplicate,
    finish_in_bucket,
    store_recording,
)
from lib.records import FileRecord, Status
from lib.repository import Repository
from lib.uploads.job import JobStatus, UploadJob
from lib.workspace import Workspace

log = logging.getLogger(__name__)

UNEXPECTED_CHECK = "The check failed unexpectedly; the server log has the details. Check again, or discard the file."
UNEXPECTED_STORE = "The upload failed unexpectedly; the server log has the details. Nothing was kept half-stored."
RECHECK_STORED_S = 30.0
"""How long a stored job trusts that its record still exists before it asks the repository again."""


def check(job: UploadJob, backends: Backends, workspace: Workspace,
          progress: ProgressCallback | None = None) -> UploadJob:
    """Check the job's file (a browser upload is fetched from the bucket first), then look for a stored
    duplicate. Nothing is stored; a file that cannot be accepted leaves nothing behind."""
    if job.status is not JobStatus.CHECKING:
        raise JobStateError(f"{job.display_name} is {job.status.value.lower()}, so it cannot be checked now.")
    try:
        prepared, in_bucket = _check(job, backends, workspace.slot(job.id), progress)
        duplicate = find_duplicate(prepared.sha256, backends.repo, Reporter(progress))
    except ValidationError as exc:  # the file itself
        release(job, workspace)
        return job.refused(str(exc))
    except PulseVaultError as exc:  # the check could not run (disk full, a service down): Check again
        return job.check_failed(str(exc))
    except Exception:
        log.exception("the check of a recording failed unexpectedly")
        return job.check_failed(UNEXPECTED_CHECK)
    return job.checked(prepared, in_bucket, duplicate)


def _check(job: UploadJob, backends: Backends, workdir: Path,
           progress: ProgressCallback | None) -> tuple[PreparedRecording, OriginalInBucket | None]:
    if job.browser is not None:
        return check_in_bucket(job.browser.record_id, job.given_name, backends, workdir, progress)
    assert job.local_path is not None
    prepared = check_recording(job.local_path, job.given_name, max_bytes=backends.settings.max_upload_bytes,
                               workdir=job.local_path.parent, progress=progress, band=backends.settings.hr_band_hz)
    return prepared, None


def store(job: UploadJob, backends: Backends, workspace: Workspace, progress: ProgressCallback | None = None,
          cancel: threading.Event | None = None) -> UploadJob:
    """Store the checked recording (or finish a browser upload's); the local copy goes once it is ready."""
    if not job.ready_to_store(backends.settings.require_consent):
        raise JobStateError(f"{job.display_name} is not ready to store (checked, consent given, "
                            "not already stored, stored anyway if the quick look could not use it).")
    try:
        record = _store(job, backends, progress, cancel)
    except DuplicateRecording as exc:
        return job.duplicate_found(str(exc))
    except PulseVaultError as exc:
        return job.upload_failed(str(exc))
    except Exception:
        log.exception("the upload of a recording failed unexpectedly")
        return job.upload_failed(UNEXPECTED_STORE)
    release(job, workspace)
    return job.stored(record, now=time.monotonic())


def _store(job: UploadJob, backends: Backends, progress: ProgressCallback | None,
           cancel: threading.Event | None) -> FileRecord:
    assert job.prepared is not None
    if job.in_bucket is not None:
        return finish_in_bucket(job.prepared, job.in_bucket, job.research, backends,
                                allow_duplicate=job.duplicate_allowed, progress=progress, cancel=cancel)
    return store_recording(job.prepared, job.research, backends, job.attempt, progress=progress, cancel=cancel)


def retry_failed(job: UploadJob, failed: FileRecord, backends: Backends, workspace: Workspace,
                 progress: ProgressCallback | None = None) -> UploadJob:
    """My files' Retry of a failed row: the job that kept its local copy stores it again, replacing the row."""
    return store(job.retry(failed), backends, workspace, progress)


def dismiss(job: UploadJob, backends: Backends, workspace: Workspace, *, skip: bool = False) -> UploadJob:
    """Discard the file (or skip a duplicate): its local files go, and a browser upload's original and
    pending row leave the bucket too. If the bucket cannot be reached, the job says so and stays."""
    if job.browser is not None:
        try:
            cancel_upload(job.browser, backends)
        except PulseVaultError as exc:
            return job.not_removed(f"It could not be removed from the bucket: {exc}")
    release(job, workspace)
    return job.skipped() if skip else job.discarded()


def confirm_stored(job: UploadJob, repo: Repository, *, now: float | None = None) -> UploadJob:
    """A stored job whose record was deleted since (elsewhere, or in another session) becomes DELETED.

    Asks the repository at most every :data:`RECHECK_STORED_S`; an unreachable store changes nothing.
    """
    now = time.monotonic() if now is None else now
    if job.status is not JobStatus.READY or job.record is None or now - job.confirmed_at < RECHECK_STORED_S:
        return job
    try:
        current = repo.get(job.record.id)
    except NotFound:
        return job.record_gone()
    except PulseVaultError:
        return job
    return job.still_stored(now) if current.status is Status.READY else job.record_gone()


def after_deletion(jobs: Iterable[UploadJob], deleted_ids: Iterable[str]) -> list[UploadJob]:
    """The jobs as they are once these records were deleted: a stored one no longer claims to be."""
    gone = set(deleted_ids)
    return [job.record_gone() if job.status is JobStatus.READY and job.record and job.record.id in gone else job
            for job in jobs]


def retired_record_ids(jobs: Iterable[UploadJob]) -> frozenset[str]:
    """Record ids this session's jobs used for records that are gone (a new pick must not reuse them)."""
    return frozenset(rid for job in jobs if (rid := job.retired_record_id) is not None)


def job_to_retry(jobs: Iterable[UploadJob], record_id: str) -> UploadJob | None:
    """The job that kept the local copy of this failed upload, if this session has it."""
    return next((job for job in jobs if job.can_retry(record_id)), None)


def release(job: UploadJob, workspace: Workspace) -> None:
    """Remove the job's local copy and derivatives."""
    if job.prepared is not None:
        discard(job.prepared)
    workspace.remove(job.id)
