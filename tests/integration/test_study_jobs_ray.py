"""A batch job over a study on a real local Ray (2 CPUs), recordings in SeaweedFS and the demo's SQLite: started
by a member over the whole study, it finishes with every result written (the owner's uploads too), each with its
audit entry as that member, equal to the quick look, and touches no recording outside the study: not the
member's personal one, not another study's; and a member demoted mid-job stops the job with nothing
half-written."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from lib.audit import AuditAction, AuditFilter
from lib.jobs import ItemStatus, Job, JobKind, JobParameters, JobRequest, JobStatus, SqliteJobs, driver, start_job
from lib.jobs.backends import DriverTarget
from lib.jobs.driver import drive
from lib.jobs.engine import RayEngine
from lib.jobs.model import analysis_digest
from lib.repository import SqliteAuditLog
from lib.repository.base import MSG_JOB_ACCESS_LOST
from lib.settings import Settings
from lib.storage import ObjectStore
from lib.studies import Role
from tests.support.checks import reanalyse_here
from tests.support.job_world import ClipFiles, store_recording
from tests.support.people import Person, demo_person

JOB_TIMEOUT_S = 240.0



@dataclass
class Lab:
    target: DriverTarget
    db: Path
    owner: Person
    member: Person
    study: str
    recordings: list[str]
    outside: list[str]
    """The member's personal recording and one in another study of the owner's."""


@pytest.fixture
def lab(tmp_path: Path, settings: Settings, store: ObjectStore, s3_client, clips: list[ClipFiles]) -> Lab:
    db = tmp_path / "demo.db"
    owner, member = demo_person(db, "owner@lab.test"), demo_person(db, "member@lab.test")
    study = owner.repo.create_study("Sleep 2024").id
    other_study = owner.repo.create_study("Pilot").id
    owner.repo.add_member(study, "member@lab.test", Role.MEMBER)
    put = s3_client, store.bucket
    recordings = [store_recording(*put, owner.server, clips[0], name="owner0.avi", with_truth=True,
                                  study_id=study).id,
                  store_recording(*put, owner.server, clips[1], name="owner1.avi", study_id=study).id,
                  store_recording(*put, member.server, clips[1], name="member0.avi", study_id=study).id]
    outside = [store_recording(*put, member.server, clips[0], name="personal.avi").id,
               store_recording(*put, owner.server, clips[0], name="pilot.avi", study_id=other_study).id]
    target = DriverTarget(settings, db_path=db, workdir=tmp_path / "work")
    return Lab(target, db, owner, member, study, recordings, outside)


def study_job(lab: Lab, record_ids: list[str]) -> Job:
    request = JobRequest(JobKind.REANALYSE, JobParameters("POS"), record_ids, study_id=lab.study,
                         owner_email="member@lab.test")
    return start_job(SqliteJobs(lab.db, lab.member.id), lab.member.repo, request, lambda: None)


def test_a_job_over_a_study_writes_every_result_and_touches_nothing_outside(lab: Lab, engine: RayEngine,
                                                                            store: ObjectStore):
    before = {r: lab.owner.server.get(r).analysis if r == lab.outside[1] else lab.member.server.get(r).analysis
              for r in lab.outside}
    # The member asks for the whole study and, by id, for the two outside it: those are left out.
    job = study_job(lab, [*lab.member.server.study_record_ids(lab.study), *lab.outside])
    assert sorted(job.record_ids) == sorted(lab.recordings) and job.study_id == lab.study
    done = drive(job.id, lab.target.owner(lab.member.id), engine)
    assert done.status is JobStatus.FINISHED
    assert {r.status for r in done.results.values()} == {ItemStatus.DONE}
    for record_id in lab.recordings:
        saved = lab.owner.repo.get(record_id).analysis
        assert saved is not None and analysis_digest(saved) == done.results[record_id].digest
    quick = reanalyse_here(store, lab.owner.repo, lab.owner.server, lab.recordings[0], method="POS")
    assert analysis_digest(quick.analysis) == done.results[lab.recordings[0]].digest
    after = {r: lab.owner.server.get(r).analysis if r == lab.outside[1] else lab.member.server.get(r).analysis
             for r in lab.outside}
    assert after == before
    entries = SqliteAuditLog(lab.db, lab.owner.id).entries(AuditFilter(study_id=lab.study, actor_id=lab.member.id,
                                                                        actions=(AuditAction.REANALYSE,)))
    assert sorted(e.record_id for e in entries) == sorted(lab.recordings)
    assert {e.detail["job"] for e in entries} == {job.id}


def test_a_member_demoted_mid_job_stops_it_with_nothing_half_written(lab: Lab, engine: RayEngine, s3_client,
                                                                     store: ObjectStore, clips: list[ClipFiles],
                                                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(driver, "SAVE_S", 0.0)  # the row after every wait: the demotion lands early in the job
    more = [store_recording(s3_client, store.bucket, lab.owner.server, clips[i % 2], name=f"more{i}.avi",
                            study_id=lab.study).id for i in range(10)]
    job = study_job(lab, [*lab.recordings, *more])
    jobs = SqliteJobs(lab.db, lab.member.id)
    ended: list[Job] = []
    runner = threading.Thread(target=lambda: ended.append(drive(job.id, lab.target.owner(lab.member.id), engine)))
    runner.start()
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while jobs.get(job.id).count(ItemStatus.DONE) < 1:
        assert time.monotonic() < deadline, "timed out waiting for the first result"
        time.sleep(0.2)
    lab.owner.repo.set_role(lab.study, lab.member.id, Role.VIEWER)
    runner.join(JOB_TIMEOUT_S)
    assert ended, "the job did not end"
    done = ended[0]
    assert done.status is JobStatus.FAILED and done.error == MSG_JOB_ACCESS_LOST
    assert set(done.results) == set(job.record_ids)
    written = {r for r in job.record_ids if lab.owner.repo.get(r).analysis is not None}
    finished = {r for r, res in done.results.items() if res.status is ItemStatus.DONE}
    assert written == finished and len(finished) < len(job.record_ids)
    entries = SqliteAuditLog(lab.db, lab.owner.id).entries(AuditFilter(study_id=lab.study,
                                                                        actions=(AuditAction.REANALYSE,)))
    assert {e.record_id for e in entries} == finished
