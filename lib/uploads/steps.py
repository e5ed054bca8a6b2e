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

from lib.checks import UNEXPECTED_CHECK, CheckOutcome, CheckPool, CheckTask, Phase, Verdict
from lib.direct_upload import cancel_upload
from lib.errors import DuplicateRecording, JobStateError, NotFound, PulseVaultError, ValidationError
from lib.pipeline import (
    Backends,
    OriginalInBucket,
    ProgressCallback,
    clean_up_failure,
    discard,
    find_duplicate,
    finish_in_bucket,
    store_recording,
)
from lib.records import FileRecord, Status
from lib.repository import Repository
from lib.transfer import sign_download
from lib.uploads.job import JobStatus, UploadJob
from lib.workspace import Workspace

log = logging.getLogger(__name__)

CHECK_FOLDER = "check"
"""The folder, inside a job's workspace slot, that its check writes (a cancelled check's folder is removed; the
local copy beside it stays)."""
UNEXPECTED_STORE = "The upload failed unexpectedly; the server log has the details. Nothing was kept half-stored."
RECHECK_STORED_S = 30.0
"""How long a stored job trusts that its record still exists before it asks the repository again."""


def check(job: UploadJob, backends: Backends, workspace: Workspace, checks: CheckPool) -> UploadJob:
    """Move the job's check on without waiting for it.

    The first call hands the check (validate, probe, preview, quick look) to the check workers
    (:mod:`lib.checks`); a browser upload's original is signed for them to fetch. A later call, once
    ``checks.state(job.id)`` says it is done, takes the outcome and looks for a stored duplicate (here:
    that needs the user's repository). Until then the job comes back unchanged. Nothing is stored; a
    file that cannot be accepted leaves nothing behind.
    """
    if job.status is not JobStatus.CHECKING:
        raise JobStateError(f"{job.display_name} is {job.status.value.lower()}, so it cannot be checked now.")
    state = checks.state(job.id)
    if state is None:  # not handed over yet (or its outcome was dropped unclaimed): hand it over
        return _submit(job, backends, workspace, checks)
    if state.phase is not Phase.DONE:
        return job
    outcome = checks.take(job.id)
    if outcome is None:  # taken by a concurrent rerun of the same session
        return job
    return _checked(job, outcome, backends, workspace)


def _submit(job: UploadJob, backends: Backends, workspace: Workspace, checks: CheckPool) -> UploadJob:
    try:
        task = _check_task(job, backends, workspace.slot(job.id) / CHECK_FOLDER)
        checks.submit(job.id, backends.repo.user_id, task)
    except ValidationError as exc:  # a browser upload already marked failed
        release(job, workspace)
        return job.refused(str(exc))
    except PulseVaultError as exc:  # the bucket cannot be reached to sign the original
        return job.check_failed(str(exc))
    return job.check_submitted(task)


def _check_task(job: UploadJob, backends: Backends, workdir: Path) -> CheckTask:
    settings = backends.settings
    if job.browser is None:
        return CheckTask(job.given_name, workdir, settings.max_upload_bytes, path=job.local_path,
                         band=settings.hr_band_hz)
    row = _pending_row(job.browser.record_id, backends.repo)
    source = sign_download(backends.store, row.s3_key, owner=backends.owner)
    return CheckTask(job.given_name, workdir, settings.max_upload_bytes, source=source, band=settings.hr_band_hz)


def _pending_row(record_id: str, repo: Repository) -> FileRecord:
    row = repo.get(record_id)
    if row.status is Status.FAILED:
        raise ValidationError(row.error or f"{row.original_name} could not be stored; upload it again.")
    return row


def _checked(job: UploadJob, outcome: CheckOutcome, backends: Backends, workspace: Workspace) -> UploadJob:
    """The job once its check ended: checked (and looked up for duplicates), refused, or failed."""
    if outcome.verdict is Verdict.FAILED:
        return job.check_failed(outcome.message or UNEXPECTED_CHECK)
    try:
        if outcome.verdict is Verdict.REFUSED:
            _refuse_in_bucket(job, outcome.message or UNEXPECTED_CHECK, backends)
            release(job, workspace)
            return job.refused(outcome.message or UNEXPECTED_CHECK)
        assert outcome.prepared is not None
        in_bucket = _in_bucket(job, backends)
        duplicate = find_duplicate(outcome.prepared.sha256, backends.repo, study_id=backends.study_id)
    except ValidationError as exc:  # a browser upload marked failed meanwhile
        release(job, workspace)
        return job.refused(str(exc))
    except PulseVaultError as exc:  # the metadata store is down: Check again
        return job.check_failed(str(exc))
    return job.checked(outcome.prepared, in_bucket, duplicate)


def _in_bucket(job: UploadJob, backends: Backends) -> OriginalInBucket | None:
    """A browser upload's pending row, and the ETag of the bytes the worker fetched and checked."""
    if job.browser is None:
        return None
    assert job.check_task is not None and job.check_task.source is not None
    return OriginalInBucket(record=_pending_row(job.browser.record_id, backends.repo),
                            etag=job.check_task.source.etag)


def _refuse_in_bucket(job: UploadJob, reason: str, backends: Backends) -> None:
    """A browser upload that is not an acceptable video: its original leaves the bucket, its row says why."""
    if job.browser is None:
        return
    row = backends.repo.get(job.browser.record_id)
    clean_up_failure(row, [row.s3_key], ValidationError(reason), backends)


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
