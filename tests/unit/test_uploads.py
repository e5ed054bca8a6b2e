"""lib/uploads: the upload job's states and transitions (pure), and the rules that read a session's jobs."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lib import uploads
from lib.direct_upload import DirectUpload
from lib.errors import JobStateError, MetadataUnavailable, NotFound
from lib.pipeline import PreparedRecording
from lib.records import FileRecord, ResearchFields, Status
from lib.uploads import JobStatus, UploadJob

USER = "0b6f3c5e-5a55-4c1e-9d7c-1f2a3b4c5d6e"
RESEARCH = ResearchFields(subject_id="S07", tags=("rest",))


def prepared(tmp_path: Path) -> PreparedRecording:
    return PreparedRecording(path=tmp_path / "original.avi", given_name="a.avi", original_name="a.avi",
                             workdir=tmp_path, container=None, video=None, size_bytes=10,  # type: ignore[arg-type]
                             sha256="ab" * 32, thumbnail=tmp_path / "thumb.jpg", preview=None)


def record(record_id: str | None = None, *, name: str = "a.avi", status: Status = Status.READY) -> FileRecord:
    rid = record_id or str(uuid.uuid4())
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    return FileRecord(id=rid, user_id=USER, s3_key=f"recordings/{USER}/2026/03/{rid}/original.avi",
                      bucket="b", original_name=name, content_type="video/x-msvideo", size_bytes=10,
                      status=status, created_at=now, updated_at=now, sha256=None, error=None, thumbnail_key=None,
                      preview_key=None, ground_truth_key=None, video=None, research=ResearchFields(), analysis=None)


def browser_upload(record_id: str | None = None) -> DirectUpload:
    rid = record_id or str(uuid.uuid4())
    return DirectUpload(user_id=USER, record_id=rid, key=f"recordings/{USER}/2026/03/{rid}/original.avi",
                        upload_id=None, original_name="big.avi", content_type="video/x-msvideo", size=10,
                        part_size=5)


def local(tmp_path: Path) -> UploadJob:
    return uploads.local_job("file-1", "a.avi", 10, tmp_path / "original.avi")


def waiting(tmp_path: Path) -> UploadJob:
    return local(tmp_path).checked(prepared(tmp_path))


# --- checks -----------------------------------------------------------------------------------------------


def test_a_new_local_job_is_checked_next_and_its_check_decides_the_first_record_id(tmp_path: Path) -> None:
    job = local(tmp_path)
    assert job.status is JobStatus.CHECKING and not job.storable and job.attempt_id is None
    checked = job.checked(prepared(tmp_path))
    assert checked.status is JobStatus.WAITING and checked.storable
    assert str(uuid.UUID(checked.attempt_id)) == checked.attempt_id
    assert checked.attempt == uploads.job.Attempt(record_id=checked.attempt_id)
    assert checked.display_name == "a.avi" and checked.local_path == checked.prepared.path


def test_a_duplicate_waits_for_the_researcher(tmp_path: Path) -> None:
    existing = record(name="first.avi")
    job = local(tmp_path).checked(prepared(tmp_path), duplicate_of=existing)
    assert job.status is JobStatus.ALREADY_STORED and not job.storable
    assert job.duplicate_note == "The same recording is already stored as first.avi (uploaded 2026-03-01 12:00 UTC)."
    assert "upload it anyway" not in job.duplicate_note  # the page asks the question once
    anyway = job.allow_duplicate()
    assert anyway.status is JobStatus.WAITING and anyway.attempt.allow_duplicate
    skipped = job.skipped()
    assert skipped.status is JobStatus.SKIPPED and skipped.dismissed and skipped.prepared is None


def test_a_refused_file_keeps_nothing_and_a_failed_check_can_run_again(tmp_path: Path) -> None:
    refused = local(tmp_path).refused("notes.mp4 is plain text.")
    assert (refused.status, refused.message, refused.local_path) == (JobStatus.NOT_ACCEPTED,
                                                                    "notes.mp4 is plain text.", None)
    failed = local(tmp_path).check_failed("The disk is full.")
    assert failed.status is JobStatus.CHECK_FAILED and failed.local_path is not None
    again = failed.recheck()
    assert again.status is JobStatus.CHECKING and again.message is None
    with pytest.raises(JobStateError):
        refused.recheck()


# --- storing ----------------------------------------------------------------------------------------------


def test_a_failed_attempt_is_replaced_by_the_next_one_with_a_new_record_id(tmp_path: Path) -> None:
    job = waiting(tmp_path)
    first = job.attempt_id
    failed = job.upload_failed("The storage service dropped the connection.")
    assert failed.status is JobStatus.UPLOAD_FAILED and failed.storable
    assert failed.failed_attempt == first and failed.attempt_id not in (None, first)
    assert failed.attempt.replaces == first and failed.can_retry(first)
    again = failed.upload_failed("again")
    assert again.failed_attempt == failed.attempt_id  # each failed attempt is replaced by the next
    stored = again.stored(record(again.attempt_id), now=5.0)
    assert stored.status is JobStatus.READY and stored.failed_attempt is None
    assert stored.prepared is None and stored.local_path is None and stored.confirmed_at == 5.0


def test_a_browser_upload_keeps_its_pending_row_across_failures(tmp_path: Path) -> None:
    upload = browser_upload()
    job = uploads.browser_job(upload, RESEARCH, consent=True).checked(prepared(tmp_path))
    assert job.attempt_id == upload.record_id and job.research == RESEARCH and job.consent
    failed = job.upload_failed("The metadata store could not be reached.")
    assert (failed.attempt_id, failed.failed_attempt) == (upload.record_id, None)  # Retry finishes the same row
    assert failed.store_when_checked(require_consent=True)


def test_a_store_attempt_that_finds_a_duplicate_asks_again(tmp_path: Path) -> None:
    job = waiting(tmp_path).duplicate_found("The same recording is already stored as b.avi (uploaded ...).")
    assert job.status is JobStatus.ALREADY_STORED and not job.duplicate_allowed


def test_transitions_from_the_wrong_state_are_refused(tmp_path: Path) -> None:
    with pytest.raises(JobStateError, match=r"a\.avi is checking, so it cannot be stored now"):
        local(tmp_path).stored(record())
    stored = waiting(tmp_path).stored(record())
    for move in (lambda: stored.upload_failed("x"), stored.discarded, lambda: stored.checked(prepared(tmp_path)),
                 stored.allow_duplicate, waiting(tmp_path).record_gone, waiting(tmp_path).skipped):
        with pytest.raises(JobStateError):
            move()


def test_consent_gates_storing_only_when_required(tmp_path: Path) -> None:
    job = waiting(tmp_path)
    assert job.ready_to_store(require_consent=False) and not job.ready_to_store(require_consent=True)
    given = job.with_input(RESEARCH, consent=True)
    assert given.ready_to_store(require_consent=True) and given.research == RESEARCH
    assert not job.store_when_checked(require_consent=False)  # a dropped file waits for Upload


def test_a_recording_the_quick_look_cannot_use_is_stored_only_when_the_researcher_says_so(tmp_path: Path) -> None:
    from lib.rppg import AnalysisSummary, QualityFlag, Severity

    def analysed(*severities: Severity) -> PreparedRecording:
        flags = tuple(QualityFlag(f"f{i}", s, None, None, f"problem {i}") for i, s in enumerate(severities))
        summary = AnalysisSummary(method="POS", hr_bpm=None, snr_db=None, hr_track=(), pulse=(), pulse_fs=0.0,
                                  flags=flags, frames_analysed=1, seconds_taken=0.1)
        return replace(prepared(tmp_path), analysis=summary)

    fine = local(tmp_path).checked(analysed(Severity.WARNING))
    assert fine.doubts == () and fine.ready_to_store(require_consent=False)
    doubtful = local(tmp_path).checked(analysed(Severity.CRITICAL, Severity.WARNING, Severity.CRITICAL))
    assert doubtful.doubts == ("problem 0", "problem 2") and doubtful.storable
    assert not doubtful.ready_to_store(require_consent=False)  # neither Upload nor "Upload all" sends it
    kept = doubtful.with_input(RESEARCH, consent=False, keep_doubtful=True)
    assert kept.ready_to_store(require_consent=False) and not kept.ready_to_store(require_consent=True)
    unanalysable = local(tmp_path).checked(replace(prepared(tmp_path), analysis_error="Not one frame decoded."))
    assert unanalysable.doubts == ("Not one frame decoded.",) and not unanalysable.ready_to_store(False)
    browser = uploads.browser_job(browser_upload(), RESEARCH, consent=True).checked(analysed(Severity.CRITICAL))
    assert not browser.store_when_checked(require_consent=True)  # a browser upload waits for the answer too


# --- My files: retry and delete ------------------------------------------------------------------------------


def test_retry_from_my_files_stores_under_the_failed_rows_fields(tmp_path: Path) -> None:
    failed = waiting(tmp_path).upload_failed("Network down")
    row = replace(record(failed.failed_attempt, status=Status.FAILED), research=RESEARCH)
    assert uploads.job_to_retry([waiting(tmp_path), failed], row.id) is failed
    assert uploads.job_to_retry([failed], str(uuid.uuid4())) is None
    retrying = failed.retry(row)
    assert retrying.research == RESEARCH and retrying.attempt.replaces == row.id
    with pytest.raises(JobStateError, match="no kept local copy"):
        failed.retry(record())


def test_a_deleted_record_is_no_longer_called_stored_and_its_id_is_retired(tmp_path: Path) -> None:
    stored = waiting(tmp_path).stored(record())
    other = waiting(tmp_path)
    after = uploads.after_deletion([stored, other], [stored.record.id])
    assert [j.status for j in after] == [JobStatus.DELETED, JobStatus.WAITING]
    assert after[0].keep_when_unpicked and uploads.retired_record_ids(after) == {stored.record.id}


def test_every_browser_pick_is_a_new_job_and_a_dismissed_one_retires_its_record_id(tmp_path: Path) -> None:
    upload = browser_upload()
    first, second = (uploads.browser_job(upload, RESEARCH, consent=False) for _ in range(2))
    assert first.id != second.id and first.id.startswith(uploads.BROWSER_JOB_PREFIX)
    assert first.covers_browser_record(upload.record_id) and first.keep_when_unpicked
    gone = first.discarded()
    assert not gone.covers_browser_record(upload.record_id)
    assert uploads.retired_record_ids([gone, second]) == {upload.record_id}


def test_which_jobs_outlive_their_file_leaving_the_uploader(tmp_path: Path) -> None:
    assert not local(tmp_path).keep_when_unpicked and not waiting(tmp_path).keep_when_unpicked
    assert waiting(tmp_path).upload_failed("x").keep_when_unpicked  # Retry needs its local copy
    assert waiting(tmp_path).stored(record()).keep_when_unpicked  # the summary lists it


class Rows:
    """A repository that answers get() from a dict (or raises what it is given)."""

    def __init__(self, answer: FileRecord | Exception) -> None:
        self.answer, self.calls = answer, 0

    def get(self, record_id: str) -> FileRecord:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_a_stored_job_notices_its_record_is_gone_but_asks_at_most_every_interval(tmp_path: Path) -> None:
    stored = waiting(tmp_path).stored(record(), now=100.0)
    gone = Rows(NotFound("gone"))
    assert uploads.confirm_stored(stored, gone, now=100.0 + uploads.RECHECK_STORED_S / 2) is stored
    assert gone.calls == 0
    assert uploads.confirm_stored(stored, gone, now=200.0).status is JobStatus.DELETED
    being_deleted = Rows(replace(stored.record, status=Status.FAILED))
    assert uploads.confirm_stored(stored, being_deleted, now=200.0).status is JobStatus.DELETED
    still = uploads.confirm_stored(stored, Rows(stored.record), now=200.0)
    assert still.status is JobStatus.READY and still.confirmed_at == 200.0
    down = uploads.confirm_stored(stored, Rows(MetadataUnavailable("down")), now=200.0)
    assert down.status is JobStatus.READY  # unreachable: nothing is concluded
