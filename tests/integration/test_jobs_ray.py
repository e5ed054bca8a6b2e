"""Batch jobs on a real local Ray (one per module, 2 CPUs, a small object store; shut down afterwards), over
recordings in SeaweedFS and a SQLite metadata file: every result written and equal to the quick look, a killed
worker survived, a driver restarted and resumed, cancel, a deleted recording, an unreachable cluster, and no
other user's recording touched."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from lib.jobs import (
    ItemStatus,
    Job,
    JobKind,
    JobParameters,
    JobRequest,
    JobStatus,
    SqliteJobs,
    cancel_job,
    launch,
    start_job,
)
from lib.jobs.backends import DriverTarget
from lib.jobs.driver import OwnerBackends, drain, drive
from lib.jobs.engine import EngineConfig, RayEngine
from lib.jobs.model import STALE_AFTER_S, analysis_digest
from lib.repository import SqliteAuditLog, SqliteRepository, SqliteServerRecords
from lib.repository.base import iso
from lib.settings import Settings
from lib.storage import ObjectStore
from tests.support.checks import reanalyse_here
from tests.support.job_world import ClipFiles, store_recording

REPO = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_S = 240.0



@dataclass
class World:
    settings: Settings
    db: Path
    owner: OwnerBackends
    repo: SqliteRepository
    other: SqliteServerRecords
    other_record_id: str
    record_ids: list[str]


@pytest.fixture
def world(tmp_path: Path, settings: Settings, store: ObjectStore, s3_client, clips: list[ClipFiles]) -> World:
    """User A with four recordings (two with ground truth), user B with one."""
    db = tmp_path / "meta.db"
    user, other_user = "a0000000-0000-4000-8000-00000000000a", "b0000000-0000-4000-8000-00000000000b"
    server = SqliteServerRecords(db, user)
    other = SqliteServerRecords(db, other_user)
    ids = [store_recording(s3_client, store.bucket, server, clips[i % 2], name=f"rec{i}.avi", with_truth=i < 2).id
           for i in range(4)]
    other_id = store_recording(s3_client, store.bucket, other, clips[0], name="theirs.avi").id
    owner = OwnerBackends(store, server, SqliteJobs(db, user), SqliteAuditLog(db, user), tmp_path / "work")
    return World(settings, db, owner, SqliteRepository(db, user), other, other_id, ids)


def new_job(world: World, kind: JobKind = JobKind.REANALYSE, ids: list[str] | None = None) -> Job:
    return start_job(world.owner.jobs, world.repo, JobRequest(kind, JobParameters("POS"), ids or world.record_ids),
                     lambda: None)


def wait_for(condition, what: str, timeout_s: float = JOB_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_job_writes_every_result_equal_to_the_quick_look(world: World, engine: RayEngine, store: ObjectStore):
    their_analysis = world.other.get(world.other_record_id).analysis
    job = new_job(world)
    assert job.status is JobStatus.QUEUED and job.record_ids == tuple(world.record_ids)
    done = drive(job.id, world.owner, engine)
    assert done.status is JobStatus.FINISHED and done.finished_at is not None
    assert {r.status for r in done.results.values()} == {ItemStatus.DONE}
    for record_id in world.record_ids:
        saved = world.repo.get(record_id).analysis
        assert saved is not None and analysis_digest(saved) == done.results[record_id].digest
    # The quick look (My files' Re-analyse) of the same recording with the same parameters finds the same.
    quick = reanalyse_here(store, world.repo, world.owner.records, world.record_ids[0], method="POS")
    assert analysis_digest(quick.analysis) == done.results[world.record_ids[0]].digest
    assert world.other.get(world.other_record_id).analysis == their_analysis

    again = drive(new_job(world).id, world.owner, engine)  # nothing changed: every result is current
    assert {r.status for r in again.results.values()} == {ItemStatus.SKIPPED}


def test_evaluation_covers_recordings_with_ground_truth(world: World, engine: RayEngine):
    job = new_job(world, JobKind.EVALUATE)
    assert len(job.record_ids) == 2  # the two with ground truth
    done = drive(job.id, world.owner, engine)
    assert done.status is JobStatus.FINISHED
    assert done.summary is not None and done.summary["compared"] == 2
    figures = done.summary["figures"][0]
    assert figures["method"] == "POS" and figures["recordings"] == 2 and figures["mae_bpm"] is not None


def test_no_other_users_recording_is_touched(world: World, engine: RayEngine):
    their_analysis = world.other.get(world.other_record_id).analysis
    # start_job leaves out an id that is not the user's; a row written around it still reaches nothing.
    job = new_job(world, ids=[world.record_ids[0], world.other_record_id])
    assert job.record_ids == (world.record_ids[0],)
    forged = world.owner.jobs.create(JobKind.REANALYSE, JobParameters("POS"), (world.other_record_id,))
    done = drive(forged.id, world.owner, engine)
    assert done.results[world.other_record_id].status is ItemStatus.DELETED
    assert world.other.get(world.other_record_id).analysis == their_analysis


def test_a_deleted_recording_ends_with_its_own_status(world: World, engine: RayEngine):
    job = new_job(world)
    world.owner.records.delete(world.record_ids[1])
    done = drive(job.id, world.owner, engine)
    assert done.status is JobStatus.FINISHED
    assert done.results[world.record_ids[1]].status is ItemStatus.DELETED
    assert "deleted" in done.results[world.record_ids[1]].message
    assert sum(r.status is ItemStatus.DONE for r in done.results.values()) == 3


def analysing_workers() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if cmdline.startswith("ray::analyse_on_worker"):
            found.append(proc)
    return found


def test_a_killed_worker_is_retried_and_the_job_finishes(world: World, engine: RayEngine):
    job = new_job(world)
    ended: list[Job] = []
    runner = threading.Thread(target=lambda: ended.append(drive(job.id, world.owner, engine)))
    runner.start()
    wait_for(analysing_workers, "a worker to start analysing")
    analysing_workers()[0].kill()
    runner.join(JOB_TIMEOUT_S)
    assert ended, "the job did not end"
    done = ended[0]
    assert done.status is JobStatus.FINISHED
    assert {r.status for r in done.results.values()} == {ItemStatus.DONE}
    assert max(r.attempts for r in done.results.values()) >= 2  # the killed one ran again


def test_cancel_stops_the_job_cleanly(world: World, engine: RayEngine, s3_client, store: ObjectStore,
                                      clips: list[ClipFiles]):
    more = [store_recording(s3_client, store.bucket, world.owner.records, clips[i % 2], name=f"more{i}.avi").id
            for i in range(12)]  # enough that the cancel lands before the last one ends
    world.record_ids.extend(more)
    job = new_job(world)
    ended: list[Job] = []
    runner = threading.Thread(target=lambda: ended.append(drive(job.id, world.owner, engine)))
    runner.start()
    wait_for(lambda: world.owner.jobs.get(job.id).status is JobStatus.RUNNING, "the job to start")
    cancel_job(world.owner.jobs, job.id)
    runner.join(60)
    assert ended and ended[0].status is JobStatus.CANCELLED
    assert set(ended[0].results) == set(world.record_ids)  # every recording says how it ended
    assert ItemStatus.CANCELLED in {r.status for r in ended[0].results.values()}
    assert not analysing_workers() or wait_for(lambda: not analysing_workers(), "the workers to stop", 30) is None


def test_the_job_resumes_after_its_driver_is_killed(world: World, engine: RayEngine, tmp_path: Path, s3_client,
                                                   store: ObjectStore, clips: list[ClipFiles]):
    more = [store_recording(s3_client, store.bucket, world.owner.records, clips[i % 2], name=f"more{i}.avi").id
            for i in range(8)]
    job = new_job(world, ids=[*world.record_ids, *more])
    target = DriverTarget(world.settings, db_path=world.db, workdir=tmp_path / "driver-work")
    driver = subprocess.Popen([sys.executable, "-m", "lib.jobs", "drain"], cwd=REPO, stdin=subprocess.PIPE,
                              start_new_session=True)
    assert driver.stdin is not None
    driver.stdin.write(pickle.dumps(target))
    driver.stdin.close()
    try:
        wait_for(lambda: len(world.owner.jobs.get(job.id).results) >= 1, "the first result from the driver")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
        driver.wait(30)
    first = world.owner.jobs.get(job.id)
    assert len(first.results) < len(job.record_ids), "the driver finished before it could be killed"
    assert first.status is JobStatus.RUNNING and not first.driverless()  # its heartbeat is fresh: nobody takes over
    kept = dict(first.results)
    age_heartbeat(world.db, job.id)  # as if STALE_AFTER_S had passed

    resumed = drain(lambda _user: world.owner, world.owner.jobs.unfinished, lambda: engine)
    assert [j.id for j in resumed] == [job.id]
    done = resumed[0]
    assert done.status is JobStatus.FINISHED and done.driver_attempts == 2
    assert {r.status for r in done.results.values()} == {ItemStatus.DONE}
    for record_id, result in kept.items():  # finished before the restart: not run again
        assert done.results[record_id] == result


def test_an_app_start_resumes_the_jobs_a_stopped_app_left(world: World, monkeypatch: pytest.MonkeyPatch):
    started: list[DriverTarget] = []
    monkeypatch.setattr(launch, "ensure_driver", started.append)  # the driver itself: the test above
    target = DriverTarget(world.settings, db_path=world.db)
    assert not launch.resume_unfinished(target) and not started  # nothing left: no driver
    new_job(world)
    assert launch.resume_unfinished(target) and started == [target]


def age_heartbeat(db: Path, job_id: str) -> None:
    import sqlite3

    old = iso(datetime.now(UTC) - timedelta(seconds=STALE_AFTER_S + 1))
    with sqlite3.connect(db) as conn:
        conn.execute("update jobs set heartbeat_at = ? where id = ?", (old, job_id))


def test_an_unreachable_cluster_fails_the_job_with_a_reason(world: World):
    job = new_job(world)
    ended = drain(lambda _user: world.owner, world.owner.jobs.unfinished,
                  lambda: RayEngine(EngineConfig(address="127.0.0.1:9", num_cpus=1)))
    assert [j.id for j in ended] == [job.id]
    assert ended[0].status is JobStatus.FAILED
    assert "cannot be reached" in (ended[0].error or "")
