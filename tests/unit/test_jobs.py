"""Batch jobs without Ray: the state machine, progress, parameters and digests, the SQLite job store (claim,
cancel, what is current, one owner only), and the driver's decisions with an in-process engine that returns
what a worker would (bounded retries, a recording deleted while it ran, a refused file, cancel)."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lib.checks.values import AnalysisTask, CheckOutcome, Verdict
from lib.errors import ConfigError, EngineUnavailable, JobStateError, ValidationError
from lib.jobs import ItemResult, ItemStatus, JobKind, JobParameters, JobRequest, JobStatus, SqliteJobs, start_job
from lib.jobs.driver import CURRENT, GONE_WHILE_RUNNING, OwnerBackends, drive
from lib.jobs.engine import WorkerLost, probe
from lib.jobs.model import (
    MAX_ATTEMPTS,
    STALE_AFTER_S,
    JobScope,
    analysis_digest,
    check_move,
    fingerprint,
    job_progress,
    new_job_values,
)
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.repository.base import iso
from lib.settings import load_settings
from tests.support.job_engine import SUMMARY, HereEngine, add_record, owner_of
from tests.support.unit_world import USER

OTHER = "1c7f4d6e-6b66-4d2f-8e8d-2f3b4c5d6e7f"


# --- the state machine and values ----------------------------------------------------------------------------


@pytest.mark.parametrize(("current", "target"), [
    (JobStatus.QUEUED, JobStatus.RUNNING), (JobStatus.QUEUED, JobStatus.CANCELLED),
    (JobStatus.RUNNING, JobStatus.RUNNING), (JobStatus.RUNNING, JobStatus.CANCELLING),
    (JobStatus.RUNNING, JobStatus.FINISHED), (JobStatus.RUNNING, JobStatus.FAILED),
    (JobStatus.CANCELLING, JobStatus.CANCELLED),
])
def test_allowed_moves(current: JobStatus, target: JobStatus) -> None:
    check_move(current, target)


@pytest.mark.parametrize(("current", "target"), [
    (JobStatus.FINISHED, JobStatus.RUNNING), (JobStatus.CANCELLED, JobStatus.RUNNING),
    (JobStatus.QUEUED, JobStatus.FINISHED), (JobStatus.CANCELLING, JobStatus.FINISHED),
    (JobStatus.FAILED, JobStatus.QUEUED),
])
def test_refused_moves_say_what_the_job_is(current: JobStatus, target: JobStatus) -> None:
    with pytest.raises(JobStateError, match=f"A {current} job cannot become {target}"):
        check_move(current, target)


def test_a_job_over_no_recordings_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least one recording"):
        new_job_values(str(uuid.uuid4()), JobScope(USER), JobKind.REANALYSE, JobParameters(), ())


def test_fingerprint_follows_the_parameters_not_the_kind() -> None:
    pos = JobParameters("POS")
    assert fingerprint(JobKind.REANALYSE, pos) == fingerprint(JobKind.EVALUATE, pos)
    assert fingerprint(JobKind.REANALYSE, pos) != fingerprint(JobKind.REANALYSE, JobParameters("CHROM"))
    assert fingerprint(JobKind.REANALYSE, pos) != fingerprint(JobKind.REANALYSE, JobParameters("POS", (0.7, 3.0)))


def test_digest_ignores_how_long_the_analysis_took() -> None:
    a = SUMMARY.to_json()
    assert analysis_digest(a) == analysis_digest({**a, "seconds_taken": 9.0})
    assert analysis_digest(a) != analysis_digest({**a, "hr_bpm": 70.0})
    assert analysis_digest(None) is None


def test_progress_rate_and_time_left(tmp_path) -> None:
    jobs = SqliteJobs(tmp_path / "m.db", USER)
    ids = tuple(str(uuid.uuid4()) for _ in range(4))
    job = jobs.claim(jobs.create(JobKind.REANALYSE, JobParameters(), ids).id)
    started = datetime(2026, 1, 1, tzinfo=UTC)
    job = job.with_result(ids[0], ItemResult(ItemStatus.DONE, 1)).with_result(ids[1], ItemResult(ItemStatus.FAILED, 3))
    job = replace(job, started_at=started)
    progress = job_progress(job, started + timedelta(minutes=1))
    assert (progress.finished, progress.total, progress.failed) == (2, 4, 1)
    assert progress.rate_per_min == pytest.approx(2.0) and progress.seconds_left == pytest.approx(60.0)
    assert progress.fraction == 0.5


# --- the SQLite store --------------------------------------------------------------------------------------------


def test_claim_takes_over_only_a_driverless_job(tmp_path) -> None:
    jobs = SqliteJobs(tmp_path / "m.db", USER)
    job = jobs.create(JobKind.REANALYSE, JobParameters(), (str(uuid.uuid4()),))
    assert job.driverless()
    claimed = jobs.claim(job.id)
    assert claimed.status is JobStatus.RUNNING and not claimed.driverless()
    with pytest.raises(JobStateError, match="already being run"):
        jobs.claim(job.id)
    old = iso(datetime.now(UTC) - timedelta(seconds=STALE_AFTER_S + 1))
    with sqlite3.connect(tmp_path / "m.db") as conn:
        conn.execute("update jobs set heartbeat_at = ?", (old,))
    again = jobs.claim(job.id)
    assert again.driver_attempts == 2 and again.started_at == claimed.started_at


def test_jobs_are_the_owners_only(tmp_path) -> None:
    mine = SqliteJobs(tmp_path / "m.db", USER)
    theirs = mine.for_user(OTHER)
    job = theirs.create(JobKind.REANALYSE, JobParameters(), (str(uuid.uuid4()),))
    assert mine.list() == []
    with pytest.raises(Exception, match="does not exist"):
        mine.get(job.id)
    with pytest.raises(Exception, match="does not exist"):
        mine.request_cancel(job.id)
    assert theirs.get(job.id).status is JobStatus.QUEUED


def test_start_job_keeps_only_the_users_stored_recordings(tmp_path, server: SqliteServerRecords,
                                                          repo: SqliteRepository) -> None:
    mine = add_record(server)
    theirs = add_record(SqliteServerRecords(repo.db_path, OTHER))
    started: list[bool] = []
    job = start_job(SqliteJobs(repo.db_path, USER), repo, JobRequest(JobKind.REANALYSE, JobParameters("pos"),
                    [mine, theirs, mine]), lambda: started.append(True))
    assert job.record_ids == (mine,) and job.parameters.method == "POS" and started == [True]
    with pytest.raises(ValidationError, match="None of these recordings has ground truth"):
        start_job(SqliteJobs(repo.db_path, USER), repo, JobRequest(JobKind.EVALUATE, JobParameters(), [mine]),
                  lambda: None)
    with pytest.raises(ValidationError, match="at least one recording"):
        start_job(SqliteJobs(repo.db_path, USER), repo, JobRequest(JobKind.REANALYSE, JobParameters(), [theirs]),
                  lambda: None)


# --- the driver, with an in-process engine -----------------------------------------------------------------------


def run(owner: OwnerBackends, ids: list[str], engine: HereEngine):
    job = owner.jobs.create(JobKind.REANALYSE, JobParameters("POS"), tuple(ids))
    return drive(job.id, owner, engine)


def test_results_are_written_and_current_ones_skipped(store, server, tmp_path) -> None:
    owner = owner_of(store, server, tmp_path)
    ids = [add_record(server, store), add_record(server, store)]
    done = run(owner, ids, HereEngine(lambda task: CheckOutcome(Verdict.PASSED, analysis=SUMMARY)))
    assert done.status is JobStatus.FINISHED and {r.status for r in done.results.values()} == {ItemStatus.DONE}
    assert server.get(ids[0]).analysis == SUMMARY.to_json()
    engine = HereEngine(lambda task: CheckOutcome(Verdict.PASSED, analysis=SUMMARY))
    again = run(owner, ids, engine)
    assert engine.submitted == [] and {r.message for r in again.results.values()} == {CURRENT}


def test_a_recording_that_keeps_failing_is_reported_after_bounded_attempts(store, server, tmp_path) -> None:
    owner = owner_of(store, server, tmp_path)
    ids = [add_record(server, store), add_record(server, store)]
    flaky = ids[0]
    engine = HereEngine(lambda task: WorkerLost("its Ray worker stopped") if flaky in task.source.url
                        else CheckOutcome(Verdict.PASSED, analysis=SUMMARY))
    done = run(owner, ids, engine)
    assert done.status is JobStatus.FINISHED
    assert done.results[flaky].status is ItemStatus.FAILED and done.results[flaky].attempts == MAX_ATTEMPTS
    assert "its Ray worker stopped" in done.results[flaky].message
    assert done.results[ids[1]].status is ItemStatus.DONE  # the rest are not failed with it
    assert server.get(flaky).analysis is None


def test_a_refused_file_is_not_retried(store, server, tmp_path) -> None:
    owner = owner_of(store, server, tmp_path)
    engine = HereEngine(lambda task: CheckOutcome(Verdict.REFUSED, message="Not a video."))
    done = run(owner, [add_record(server, store)], engine)
    [result] = done.results.values()
    assert result.status is ItemStatus.FAILED and result.attempts == 1 and result.message == "Not a video."
    assert len(engine.submitted) == 1


def test_a_recording_deleted_while_it_ran_gets_nothing_written(store, server, tmp_path) -> None:
    owner = owner_of(store, server, tmp_path)
    record_id = add_record(server, store)

    def delete_then_answer(task: AnalysisTask) -> CheckOutcome:
        server.delete(record_id)
        return CheckOutcome(Verdict.PASSED, analysis=SUMMARY)

    done = run(owner, [record_id], HereEngine(delete_then_answer))
    assert done.results[record_id].status is ItemStatus.DELETED
    assert done.results[record_id].message == GONE_WHILE_RUNNING


def test_cancel_reaches_the_driver_and_every_recording_says_how_it_ended(store, server, tmp_path) -> None:
    owner = owner_of(store, server, tmp_path)
    ids = [add_record(server, store) for _ in range(4)]
    job = owner.jobs.create(JobKind.REANALYSE, JobParameters("POS"), tuple(ids))

    def cancel_then_answer(task: AnalysisTask) -> CheckOutcome:
        owner.jobs.request_cancel(job.id)
        return CheckOutcome(Verdict.PASSED, analysis=SUMMARY)

    import lib.jobs.driver as driver

    original = driver.SAVE_S
    driver.SAVE_S = 0.0  # read the row after every wait
    try:
        done = drive(job.id, owner, HereEngine(cancel_then_answer))
    finally:
        driver.SAVE_S = original
    assert done.status is JobStatus.CANCELLED and set(done.results) == set(ids)
    assert ItemStatus.CANCELLED in {r.status for r in done.results.values()}


# --- configuration and the engine's address ---------------------------------------------------------------------


def test_ray_settings() -> None:
    settings = load_settings({"ray": {"address": "ray://head:10001", "num_cpus": 3}}, {})
    assert settings.ray_address == "ray://head:10001" and settings.job_cpus == 3
    assert load_settings({}, {"RAY_ADDRESS": "head:6379"}).ray_address == "head:6379"
    with pytest.raises(ConfigError, match="num_cpus"):
        load_settings({"ray": {"num_cpus": "many"}}, {})


def test_an_address_nothing_listens_at_fails_fast_with_a_reason() -> None:
    with pytest.raises(EngineUnavailable, match="cannot be reached"):
        probe("127.0.0.1:9")


def test_an_original_missing_from_the_bucket_fails_after_bounded_attempts(store, server, tmp_path) -> None:
    owner = owner_of(store, server, tmp_path)
    engine = HereEngine(lambda task: CheckOutcome(Verdict.PASSED, analysis=SUMMARY))
    done = run(owner, [add_record(server)], engine)  # a row, but nothing in the bucket: nothing can be signed
    [result] = done.results.values()
    assert result.status is ItemStatus.FAILED and result.attempts == MAX_ATTEMPTS and engine.submitted == []
