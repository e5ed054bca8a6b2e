"""One upload job: a picked file's way from local copy (or browser upload) to a stored record.

An :class:`UploadJob` is a frozen value; every transition is a method that
returns the job's next state, and refuses (:class:`JobStateError`) when the
current state does not allow it. The job, not the page, decides which record id
each attempt at storing writes and which failed attempt a Retry replaces. The
Upload card, the Large files tab and My files' Retry all render and drive this
one object; :mod:`lib.uploads.steps` runs the work of each step.

The states (:class:`JobStatus`) and the transitions between them:

* CHECKING (``check_submitted``: the check workers have it) → WAITING or ALREADY_STORED (``checked``),
  NOT_ACCEPTED (``refused``), CHECK_FAILED (``check_failed``; ``recheck`` goes back to CHECKING);
* ALREADY_STORED → WAITING (``allow_duplicate``) or SKIPPED (``skipped``);
* WAITING or UPLOAD_FAILED → READY (``stored``), UPLOAD_FAILED (``upload_failed``),
  ALREADY_STORED (``duplicate_found``); ``retry`` (My files) points an UPLOAD_FAILED job at
  the failed row it replaces;
* READY → DELETED (``record_gone``);
* anything not stored → DISCARDED (``discarded``), or UPLOAD_FAILED when a browser upload
  could not be removed from the bucket (``not_removed``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from lib.checks import CheckTask
from lib.direct_upload import DirectUpload
from lib.errors import JobStateError
from lib.keys import new_record_id
from lib.pipeline import Attempt, OriginalInBucket, PreparedRecording, duplicate_note
from lib.records import FileRecord, ResearchFields

BROWSER_JOB_PREFIX = "direct-"
"""Ids of jobs for browser uploads (the Large files tab) start with this; dropped files use the uploader's id."""


class JobStatus(StrEnum):
    """Where an upload job stands; the value is what the page shows."""

    CHECKING = "Checking"
    NOT_ACCEPTED = "Not accepted"
    """The file itself cannot be stored (not a video, too large, ...); nothing of it is kept."""
    CHECK_FAILED = "Check failed"
    """The check could not run (disk full, metadata store down): Check again."""
    ALREADY_STORED = "Already stored"
    """The same bytes are stored already: skip, or upload anyway."""
    WAITING = "Waiting"
    UPLOAD_FAILED = "Upload failed"
    READY = "Ready"
    DISCARDED = "Discarded"
    SKIPPED = "Skipped (already stored)"
    DELETED = "Deleted"
    """It was stored, and its record has been deleted since (say, from My files)."""


STORABLE = frozenset({JobStatus.WAITING, JobStatus.UPLOAD_FAILED})
"""States from which a store attempt may start (a failed one is retried)."""
DISMISSED = frozenset({JobStatus.DISCARDED, JobStatus.SKIPPED})
"""The researcher let go of the file: the page lists it only in the summary."""
GONE = DISMISSED | {JobStatus.DELETED}
"""Nothing of the job is stored (any more)."""


@dataclass(frozen=True)
class UploadJob:
    """One picked file, from local copy (or browser upload) to stored record."""

    id: str
    given_name: str
    size_bytes: int
    status: JobStatus = JobStatus.CHECKING
    local_path: Path | None = None
    """The local copy of a dropped file (a browser upload gets one when it is fetched)."""
    browser: DirectUpload | None = None
    """A browser upload (Large files tab): the original is already in the bucket, under a pending row."""
    research: ResearchFields = field(default_factory=ResearchFields)
    consent: bool = False
    """The researcher confirmed the participant's consent (needed when the settings require it)."""
    keep_doubtful: bool = False
    """The researcher chose to store it although the quick look could not use it (see :attr:`doubts`)."""
    prepared: PreparedRecording | None = None
    in_bucket: OriginalInBucket | None = None
    """Set once a browser upload was fetched and checked: what the store step finishes it from."""
    duplicate_note: str | None = None
    duplicate_allowed: bool = False
    message: str | None = None
    """Why the file was not accepted, the check failed, or the last store attempt failed."""
    attempt_id: str | None = None
    """The record id the next store attempt writes."""
    failed_attempt: str | None = None
    """The row a failed attempt left; the next attempt replaces it."""
    record: FileRecord | None = None
    """The ready record once stored."""
    study_id: str | None = None
    """The study the recording goes into, chosen when the file was picked; None: the personal space."""
    confirmed_at: float = 0.0
    """When (monotonic seconds) a stored record was last seen still stored."""
    check_task: CheckTask | None = None
    """The check handed to the check workers (:mod:`lib.checks`) while CHECKING; the job's id is its key."""

    # --- what the page asks --------------------------------------------------------------------------

    @property
    def display_name(self) -> str:
        if self.record is not None:
            return self.record.original_name
        return self.prepared.original_name if self.prepared else self.given_name

    @property
    def storable(self) -> bool:
        """Checked, not stored, not dismissed, and not a duplicate the researcher has not allowed."""
        return self.status in STORABLE and self.prepared is not None

    def consent_ok(self, require_consent: bool) -> bool:
        return self.consent or not require_consent

    @property
    def doubts(self) -> tuple[str, ...]:
        """Why the checked recording is likely useless for rPPG: the quick look's critical flags, or why it
        could not run. Such a recording is stored only once the researcher says so (:attr:`keep_doubtful`)."""
        prepared = self.prepared
        if prepared is None:
            return ()
        if prepared.analysis is not None:
            return tuple(f.message for f in prepared.analysis.critical_flags)
        return (prepared.analysis_error,) if prepared.analysis_error else ()

    @property
    def doubts_settled(self) -> bool:
        """Nothing makes the recording doubtful, or the researcher chose to store it anyway."""
        return self.keep_doubtful or not self.doubts

    def ready_to_store(self, require_consent: bool) -> bool:
        """What "Upload" and "Upload all" may send now."""
        return self.storable and self.consent_ok(require_consent) and self.doubts_settled

    def store_when_checked(self, require_consent: bool) -> bool:
        """A browser upload's bytes are in already: it is stored as soon as it is checked."""
        return self.browser is not None and self.ready_to_store(require_consent)

    @property
    def dismissed(self) -> bool:
        return self.status in DISMISSED

    @property
    def keep_when_unpicked(self) -> bool:
        """Stays listed after its file left the uploader: stored or failed (Retry needs the local copy,
        and leaving the page empties the uploader), and browser uploads (never in the uploader)."""
        return self.browser is not None or self.status in {JobStatus.READY, JobStatus.UPLOAD_FAILED,
                                                          JobStatus.DELETED}

    @property
    def attempt(self) -> Attempt:
        """The next store attempt: its record id, the failed one it replaces, and the duplicate choice."""
        assert self.attempt_id is not None
        return Attempt(record_id=self.attempt_id, replaces=self.failed_attempt,
                       allow_duplicate=self.duplicate_allowed)

    def can_retry(self, record_id: str) -> bool:
        """This job holds the local copy that Retry of the failed row ``record_id`` stores."""
        return (self.status is JobStatus.UPLOAD_FAILED and self.prepared is not None
                and self.failed_attempt == record_id)

    @property
    def retired_record_id(self) -> str | None:
        """A record id this job used whose record is gone: never to be handed out again in this session."""
        if self.status is JobStatus.DELETED and self.record is not None:
            return self.record.id
        if self.status in DISMISSED and self.browser is not None:
            return self.browser.record_id
        return None

    def covers_browser_record(self, record_id: str) -> bool:
        """This job is (still) the one finishing the browser upload of ``record_id``."""
        return self.browser is not None and self.browser.record_id == record_id and self.status not in GONE

    # --- transitions -----------------------------------------------------------------------------------

    def checked(self, prepared: PreparedRecording, in_bucket: OriginalInBucket | None = None,
                duplicate_of: FileRecord | None = None) -> UploadJob:
        self._expect("checked", JobStatus.CHECKING)
        note = duplicate_note(duplicate_of) if duplicate_of is not None else None
        # A browser upload's attempt is its pending row; a local file gets a new record id per attempt.
        attempt_id = self.browser.record_id if self.browser is not None else new_record_id()
        status = JobStatus.ALREADY_STORED if note and not self.duplicate_allowed else JobStatus.WAITING
        return replace(self, status=status, prepared=prepared, in_bucket=in_bucket, local_path=prepared.path,
                       duplicate_note=note, message=None, attempt_id=attempt_id, check_task=None)

    def check_submitted(self, task: CheckTask) -> UploadJob:
        """The check workers have the check now (it waits its turn, or runs)."""
        self._expect("checked", JobStatus.CHECKING)
        return replace(self, check_task=task)

    def refused(self, error: str) -> UploadJob:
        """The file itself cannot be accepted; its local files are gone."""
        self._expect("refused", JobStatus.CHECKING)
        return replace(self, status=JobStatus.NOT_ACCEPTED, message=error, local_path=None, prepared=None,
                       check_task=None)

    def check_failed(self, error: str) -> UploadJob:
        """The check could not run (not the file's fault): the local copy stays for Check again."""
        self._expect("checked", JobStatus.CHECKING)
        return replace(self, status=JobStatus.CHECK_FAILED, message=error, check_task=None)

    def recheck(self) -> UploadJob:
        self._expect("checked again", JobStatus.CHECK_FAILED)
        return replace(self, status=JobStatus.CHECKING, message=None)

    def with_input(self, research: ResearchFields, consent: bool, keep_doubtful: bool = False) -> UploadJob:
        """The research fields, consent and "store it anyway" as the researcher left them on the card."""
        return replace(self, research=research, consent=consent, keep_doubtful=keep_doubtful)

    def allow_duplicate(self) -> UploadJob:
        self._expect("uploaded anyway", JobStatus.ALREADY_STORED)
        return replace(self, status=JobStatus.WAITING, duplicate_allowed=True)

    def duplicate_found(self, note: str) -> UploadJob:
        """A store attempt found the same bytes stored meanwhile (say, twice in one batch)."""
        self._expect("checked for duplicates", *STORABLE)
        return replace(self, status=JobStatus.ALREADY_STORED, duplicate_note=note, duplicate_allowed=False)

    def stored(self, record: FileRecord, *, now: float = 0.0) -> UploadJob:
        self._expect("stored", *STORABLE)
        return replace(self, status=JobStatus.READY, record=record, prepared=None, in_bucket=None,
                       local_path=None, message=None, failed_attempt=None, confirmed_at=now)

    def upload_failed(self, error: str) -> UploadJob:
        """A store attempt failed; the local copy stays for Retry.

        A local file's attempt left a failed row, which the next attempt (a new record id) replaces.
        A browser upload's row stays pending with its original: Retry finishes that same row.
        """
        self._expect("stored", *STORABLE)
        if self.browser is not None:
            return replace(self, status=JobStatus.UPLOAD_FAILED, message=error)
        return replace(self, status=JobStatus.UPLOAD_FAILED, message=error, failed_attempt=self.attempt_id,
                       attempt_id=new_record_id())

    def not_removed(self, error: str) -> UploadJob:
        """Discarding a browser upload failed: its object or row is still in the bucket (Discard again)."""
        return replace(self, status=JobStatus.UPLOAD_FAILED if self.prepared else self.status, message=error)

    def retry(self, failed: FileRecord) -> UploadJob:
        """Retry from My files: store the kept local copy under the failed row's research fields,
        replacing that row."""
        if not self.can_retry(failed.id):
            raise JobStateError(f"{self.display_name} has no kept local copy for that failed upload; "
                                "upload the file again from the Upload page.")
        return replace(self, research=failed.research, failed_attempt=failed.id)

    def discarded(self) -> UploadJob:
        return self._dismissed(JobStatus.DISCARDED)

    def skipped(self) -> UploadJob:
        self._expect("skipped", JobStatus.ALREADY_STORED)
        return self._dismissed(JobStatus.SKIPPED)

    def record_gone(self) -> UploadJob:
        """Its stored record was deleted since (or is being deleted): the page must not call it stored."""
        self._expect("marked deleted", JobStatus.READY)
        return replace(self, status=JobStatus.DELETED)

    def still_stored(self, now: float) -> UploadJob:
        self._expect("confirmed", JobStatus.READY)
        return replace(self, confirmed_at=now)

    def _dismissed(self, status: JobStatus) -> UploadJob:
        if self.status in {JobStatus.READY, *GONE}:
            self._refuse("dismissed")
        return replace(self, status=status, prepared=None, local_path=None, in_bucket=None)

    def _expect(self, verb: str, *allowed: JobStatus) -> None:
        if self.status not in allowed:
            self._refuse(verb)

    def _refuse(self, verb: str) -> None:
        raise JobStateError(f"{self.display_name} is {self.status.value.lower()}, so it cannot be {verb} now.")


def local_job(job_id: str, name: str, size: int, local_path: Path, study_id: str | None = None) -> UploadJob:
    """A dropped file, copied to local disk, going into ``study_id`` (None: the personal space): checked next."""
    return UploadJob(id=job_id, given_name=name, size_bytes=size, local_path=local_path, study_id=study_id)


def uncopied_job(job_id: str, name: str, size: int, error: str) -> UploadJob:
    """A dropped file whose local copy could not be written (disk full): nothing to check or store."""
    return UploadJob(id=job_id, given_name=name, size_bytes=size, status=JobStatus.NOT_ACCEPTED, message=error)


def browser_job(upload: DirectUpload, research: ResearchFields, *, consent: bool) -> UploadJob:
    """A browser upload whose original is in the bucket: a new job (a new pick is always a new job),
    carrying the research fields and consent given on the Large files form."""
    return UploadJob(id=f"{BROWSER_JOB_PREFIX}{uuid.uuid4().hex}", given_name=upload.original_name,
                     size_bytes=upload.size, browser=upload, research=research, consent=consent,
                     study_id=upload.study_id)
