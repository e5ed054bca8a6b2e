"""Batch jobs over a study in demo mode (SQLite, the mirror of sql/011_study_jobs.sql), with an in-process engine:
who sees, starts and cancels a study's jobs; the driver reads and writes only the study's rows, writes each
re-analysis's audit entry as the job's owner, and a job whose owner loses the member role mid-job stops with
the reason and nothing half-written."""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lib.audit import AuditAction, AuditFilter
from lib.checks.values import AnalysisTask, CheckOutcome, Verdict
from lib.errors import AccessDenied, MetadataError, NotFound, StudyAccessLost
from lib.jobs import ItemStatus, JobKind, JobParameters, JobRequest, JobStatus, SqliteJobs, matching_ids, start_job
from lib.jobs.driver import ACCESS_LOST, OwnerBackends, drive
from lib.keys import record_keys
from lib.records import ListQuery, NewRecord
from lib.repository import SqliteAuditLog, SqliteServerRecords
from lib.repository.base import MSG_JOB_ACCESS_LOST
from lib.storage import ObjectStore
from lib.studies import Role, may_cancel_job
from tests.support.job_engine import SUMMARY, VIDEO, HereEngine
from tests.support.people import Person, demo_person
from tests.support.unit_world import BUCKET

PASSED = CheckOutcome(Verdict.PASSED, analysis=SUMMARY)


@dataclass(frozen=True)
class Lab:
    db: Path
    owner: Person
    member: Person
    viewer: Person
    outsider: Person
    study: str
    recordings: tuple[str, ...]
    """Two of the owner's uploads and one of the member's, in the study."""
    personal: str
    """The member's own recording outside the study."""

    def jobs(self, person: Person) -> SqliteJobs:
        return SqliteJobs(self.db, person.id)

    def backends(self, person: Person, store: ObjectStore, tmp_path: Path,
                 audit: SqliteAuditLog | None = None) -> OwnerBackends:
        return OwnerBackends(store, person.server, self.jobs(person), audit or SqliteAuditLog(self.db, person.id),
                             tmp_path / "work")


def _upload(store: ObjectStore, server: SqliteServerRecords, study: str | None) -> str:
    record_id = str(uuid.uuid4())
    keys = record_keys(server.user_id, record_id, "avi", datetime.now(UTC), study)
    store._client.put_object(Bucket=BUCKET, Key=keys.original, Body=b"0123456789")
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=BUCKET, original_name=f"{record_id}.avi",
                             content_type="video/x-msvideo", size_bytes=10, video=VIDEO, study_id=study), 10**9)
    server.mark_ready(record_id, size_bytes=10, sha256=None, video=VIDEO, thumbnail_key=None, preview_key=None)
    return record_id


@pytest.fixture
def lab(tmp_path: Path, store: ObjectStore) -> Lab:
    db = tmp_path / "demo.db"
    owner, member, viewer, outsider = (demo_person(db, f"{n}@lab.test") for n in
                                       ("owner", "member", "viewer", "outsider"))
    study = owner.repo.create_study("Sleep 2024").id
    owner.repo.add_member(study, "member@lab.test", Role.MEMBER)
    owner.repo.add_member(study, "viewer@lab.test", Role.VIEWER)
    recordings = (_upload(store, owner.server, study), _upload(store, owner.server, study),
                  _upload(store, member.server, study))
    return Lab(db, owner, member, viewer, outsider, study, recordings, _upload(store, member.server, None))


def _request(lab: Lab, ids: list[str] | None = None) -> JobRequest:
    return JobRequest(JobKind.REANALYSE, JobParameters("POS"), ids or list(lab.recordings), study_id=lab.study,
                      owner_email="member@lab.test")


# --- the rules ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("study", "role", "creator", "allowed"), [
    (None, None, "me", True), (None, None, "other", False),
    ("s", Role.MEMBER, "me", True), ("s", Role.VIEWER, "me", True),  # one's own job, whatever one's role now
    ("s", None, "me", False),  # no longer in the study: not even one's own
    ("s", Role.MEMBER, "other", False), ("s", Role.VIEWER, "other", False), ("s", Role.OWNER, "other", True),
])
def test_who_cancels_a_job(study, role, creator, allowed):
    assert may_cancel_job(study, role, creator_id=creator, caller_id="me") is allowed


# --- the store and starting a job -------------------------------------------------------------------------------


def test_every_member_sees_a_study_job_and_an_outsider_nothing(lab: Lab):
    job = start_job(lab.jobs(lab.member), lab.member.repo, _request(lab), lambda: None)
    assert job.study_id == lab.study and set(job.record_ids) == set(lab.recordings)
    for person in (lab.owner, lab.member, lab.viewer):
        assert [j.id for j in lab.jobs(person).list()] == [job.id]
    assert lab.jobs(lab.outsider).list() == []
    with pytest.raises(NotFound):
        lab.jobs(lab.outsider).get(job.id)
    lab.owner.repo.remove_member(lab.study, lab.viewer.id)
    assert lab.jobs(lab.viewer).list() == []


def test_a_study_job_keeps_only_the_studys_stored_recordings(lab: Lab):
    job = start_job(lab.jobs(lab.member), lab.member.repo, _request(lab, [*lab.recordings, lab.personal]),
                    lambda: None)
    assert lab.personal not in job.record_ids
    personal = start_job(lab.jobs(lab.member), lab.member.repo,
                         JobRequest(JobKind.REANALYSE, JobParameters(), [*lab.recordings, lab.personal]),
                         lambda: None)
    assert personal.record_ids == (lab.personal,) and personal.study_id is None
    assert set(matching_ids(lab.member.repo, ListQuery(study_id=lab.study))) == set(lab.recordings)


def test_a_viewer_or_an_outsider_cannot_start_one(lab: Lab):
    with pytest.raises(AccessDenied, match="viewers cannot"):
        start_job(lab.jobs(lab.viewer), lab.viewer.repo, _request(lab), lambda: None)
    with pytest.raises(AccessDenied):  # around start_job, the store refuses a row outside the study
        lab.jobs(lab.member).create(JobKind.REANALYSE, JobParameters(), (lab.personal,), study_id=lab.study)
    with pytest.raises(AccessDenied):
        lab.jobs(lab.outsider).create(JobKind.REANALYSE, JobParameters(), lab.recordings, study_id=lab.study)
    assert lab.jobs(lab.owner).list() == []


def test_the_creator_or_an_owner_cancels(lab: Lab):
    job = start_job(lab.jobs(lab.member), lab.member.repo, _request(lab), lambda: None)
    with pytest.raises(AccessDenied, match="Only the member who started"):
        lab.jobs(lab.viewer).request_cancel(job.id)
    assert lab.jobs(lab.owner).request_cancel(job.id).status is JobStatus.CANCELLED
    theirs = lab.jobs(lab.owner).create(JobKind.REANALYSE, JobParameters(), lab.recordings, study_id=lab.study)
    with pytest.raises(AccessDenied):
        lab.jobs(lab.member).request_cancel(theirs.id)


# --- the driver -------------------------------------------------------------------------------------------------


def test_a_study_job_writes_every_recording_of_the_study_with_its_audit_entry(lab: Lab, store, tmp_path):
    job = start_job(lab.jobs(lab.member), lab.member.repo, _request(lab), lambda: None)
    engine = HereEngine(lambda task: PASSED)
    done = drive(job.id, lab.backends(lab.member, store, tmp_path), engine)
    assert done.status is JobStatus.FINISHED
    assert {r.status for r in done.results.values()} == {ItemStatus.DONE}
    for record_id in lab.recordings:  # the owner's uploads too: a member's job writes any of the study's rows
        assert lab.owner.repo.get(record_id).analysis == SUMMARY.to_json()
    assert len(engine.submitted) == 3 and all(lab.study in t.source.url for t in engine.submitted)
    assert lab.member.repo.get(lab.personal).analysis is None
    entries = SqliteAuditLog(lab.db, lab.owner.id).entries(AuditFilter(study_id=lab.study,
                                                                        actions=(AuditAction.REANALYSE,)))
    assert {e.record_id for e in entries} == set(lab.recordings)
    assert {(e.actor_id, e.actor_email, e.detail["job"], e.detail["method"]) for e in entries} == {
        (lab.member.id, "member@lab.test", job.id, "POS")}


def test_a_forged_row_reaches_nothing_outside_the_study(lab: Lab, store, tmp_path):
    job = start_job(lab.jobs(lab.member), lab.member.repo, _request(lab, [lab.recordings[0]]), lambda: None)
    with sqlite3.connect(lab.db) as conn:  # the row now names the member's personal recording as well
        conn.execute("update jobs set record_ids = ? where id = ?",
                     (json.dumps([lab.recordings[0], lab.personal]), job.id))
    engine = HereEngine(lambda task: PASSED)
    done = drive(job.id, lab.backends(lab.member, store, tmp_path), engine)
    assert done.results[lab.personal].status is ItemStatus.DELETED
    assert lab.member.repo.get(lab.personal).analysis is None and len(engine.submitted) == 1


@pytest.mark.parametrize("lose", ["demoted", "removed"])
def test_losing_the_member_role_mid_job_stops_it_with_nothing_half_written(lab: Lab, store, tmp_path, lose):
    job = start_job(lab.jobs(lab.member), lab.member.repo, _request(lab), lambda: None)
    answered: list[str] = []

    def answer(task: AnalysisTask) -> CheckOutcome:
        answered.append(task.name)
        if len(answered) == 3:  # the last recording's result comes back after the member lost the role
            if lose == "demoted":
                lab.owner.repo.set_role(lab.study, lab.member.id, Role.VIEWER)
            else:
                lab.owner.repo.remove_member(lab.study, lab.member.id)
        return PASSED

    done = drive(job.id, lab.backends(lab.member, store, tmp_path), HereEngine(answer))
    assert done.status is JobStatus.FAILED and done.error == MSG_JOB_ACCESS_LOST
    assert set(done.results) == set(lab.recordings)
    statuses = [done.results[r].status for r in job.record_ids]
    assert statuses == [ItemStatus.DONE, ItemStatus.DONE, ItemStatus.CANCELLED]
    assert done.results[job.record_ids[2]].message == ACCESS_LOST
    written = [lab.owner.repo.get(r).analysis is not None for r in job.record_ids]
    assert written == [True, True, False]
    entries = SqliteAuditLog(lab.db, lab.owner.id).entries(AuditFilter(study_id=lab.study,
                                                                        actions=(AuditAction.REANALYSE,)))
    assert {e.record_id for e in entries} == set(job.record_ids[:2])


class BrokenAudit(SqliteAuditLog):
    def append(self, actor, event) -> None:
        raise MetadataError("the audit table is locked")


def test_an_analysis_whose_entry_cannot_be_written_is_put_back(lab: Lab, store, tmp_path):
    before = lab.owner.repo.get(lab.recordings[0]).analysis
    job = start_job(lab.jobs(lab.member), lab.member.repo, _request(lab, [lab.recordings[0]]), lambda: None)
    backends = lab.backends(lab.member, store, tmp_path, audit=BrokenAudit(lab.db, lab.member.id))
    done = drive(job.id, backends, HereEngine(lambda task: PASSED))
    [result] = done.results.values()
    assert result.status is ItemStatus.FAILED and "audit trail could not be written" in result.message
    assert lab.owner.repo.get(lab.recordings[0]).analysis == before


def test_the_study_rows_a_job_reaches_need_the_member_role_now(lab: Lab):
    assert lab.member.server.study_role(lab.study) is Role.MEMBER
    assert lab.member.server.study_row(lab.recordings[0], lab.study).id == lab.recordings[0]
    with pytest.raises(NotFound):
        lab.member.server.study_row(lab.personal, lab.study)
    for person in (lab.viewer, lab.outsider):
        with pytest.raises(StudyAccessLost):
            person.server.study_row(lab.recordings[0], lab.study)
        with pytest.raises(StudyAccessLost):
            person.server.set_study_analysis(lab.recordings[0], lab.study, {"method": "X"})
        with pytest.raises(StudyAccessLost):
            person.server.study_record_ids(lab.study)


def test_the_scripts_study_reads(lab: Lab):
    """``python -m lib.jobs run --study``: the study's stored recordings as the server reads them for the member;
    a viewer is refused before anything starts."""
    from lib.jobs.__main__ import _OwnerReads
    from lib.jobs.backends import DriverTarget
    from lib.settings import Settings

    target = DriverTarget(Settings(mode="demo"), db_path=lab.db)
    reads = _OwnerReads(target, lab.member.id, lab.study)
    assert sorted(reads.every_stored()) == sorted(lab.recordings)
    assert {r.id for r in reads.get_many([*lab.recordings, lab.personal])} == set(lab.recordings)
    with pytest.raises(AccessDenied, match="member role"):
        _OwnerReads(target, lab.viewer.id, lab.study)
