"""Regenerating previews and thumbnails as a batch job on a real local Ray (2 CPUs), the bucket a SeaweedFS
server (which checks what a presigned PUT signed): each worker stores exactly its recording's thumb.jpg and
preview.mp4 through its links, the driver writes the keys, a second job skips every current recording and
remakes one whose thumbnail went missing; over a study, only the study's rows change."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.jobs import ItemStatus, JobKind, JobParameters, JobRequest, JobStatus, SqliteJobs, start_job
from lib.jobs.backends import DriverTarget
from lib.jobs.derive import DERIVATION, DERIVED_FROM
from lib.jobs.driver import DERIVATIVES_CURRENT, drive
from lib.jobs.engine import RayEngine
from lib.keys import record_keys_of
from lib.settings import Settings
from lib.storage import ObjectStore
from lib.studies import Role
from tests.support.job_world import ClipFiles, clip_files, store_recording
from tests.support.people import demo_person
from tests.support.synthetic_pulse import ClipSpec


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> ClipFiles:
    return clip_files(tmp_path_factory.mktemp("clips"), ClipSpec(seconds=4.0, size=(160, 120), hr_bpm=70.0))


def _rederive(db: Path, user_id: str, repo, ids: list[str], study_id: str | None = None):
    request = JobRequest(JobKind.REDERIVE, JobParameters(), ids, study_id=study_id)
    return start_job(SqliteJobs(db, user_id), repo, request, lambda: None)


def test_a_rederive_job_stores_each_derivative_and_skips_current_ones(tmp_path: Path, settings: Settings,
                                                                     store: ObjectStore, s3_client, clip: ClipFiles,
                                                                     engine: RayEngine):
    db = tmp_path / "demo.db"
    me = demo_person(db, "me@lab.test")
    ids = [store_recording(s3_client, store.bucket, me.server, clip, name=f"r{i}.avi").id for i in range(3)]
    assert all(me.repo.get(i).thumbnail_key is None for i in ids)
    target = DriverTarget(settings, db_path=db, workdir=tmp_path / "work")
    done = drive(_rederive(db, me.id, me.repo, ids).id, target.owner(me.id), engine)
    assert done.status is JobStatus.FINISHED, done.error
    assert {r.status for r in done.results.values()} == {ItemStatus.DONE}, done.results
    for record_id in ids:
        record = me.repo.get(record_id)
        keys = record_keys_of(record.s3_key)
        assert (record.thumbnail_key, record.preview_key) == (keys.thumbnail, keys.preview)  # FFV1 AVI: a proxy
        thumb = s3_client.get_object(Bucket=store.bucket, Key=keys.thumbnail)
        assert thumb["ContentType"] == "image/jpeg" and thumb["Body"].read()[:2] == b"\xff\xd8"
        assert thumb["Metadata"] == {DERIVED_FROM: s3_client.head_object(Bucket=store.bucket,
                                                                         Key=record.s3_key)["ETag"].strip('"'),
                                     "derivation": DERIVATION}
        preview = s3_client.get_object(Bucket=store.bucket, Key=keys.preview)
        assert preview["ContentType"] == "video/mp4" and preview["Body"].read()[4:8] == b"ftyp"

    s3_client.delete_object(Bucket=store.bucket, Key=record_keys_of(me.repo.get(ids[0]).s3_key).thumbnail)
    again = drive(_rederive(db, me.id, me.repo, ids).id, target.owner(me.id), engine)
    assert again.results[ids[0]].status is ItemStatus.DONE  # its thumbnail was missing: made again
    assert [again.results[i].message for i in ids[1:]] == [DERIVATIVES_CURRENT] * 2
    s3_client.head_object(Bucket=store.bucket, Key=record_keys_of(me.repo.get(ids[0]).s3_key).thumbnail)


def test_a_rederive_job_over_a_study_changes_only_the_studys_rows(tmp_path: Path, settings: Settings,
                                                                  store: ObjectStore, s3_client, clip: ClipFiles,
                                                                  engine: RayEngine):
    db = tmp_path / "demo.db"
    owner, member = demo_person(db, "owner@lab.test"), demo_person(db, "member@lab.test")
    study = owner.repo.create_study("Sleep 2024").id
    owner.repo.add_member(study, "member@lab.test", Role.MEMBER)
    inside = [store_recording(s3_client, store.bucket, owner.server, clip, name=f"s{i}.avi", study_id=study).id
              for i in range(2)]
    personal = store_recording(s3_client, store.bucket, member.server, clip, name="mine.avi").id
    job = _rederive(db, member.id, member.repo, [*inside, personal], study_id=study)
    assert sorted(job.record_ids) == sorted(inside)
    done = drive(job.id, DriverTarget(settings, db_path=db, workdir=tmp_path / "w").owner(member.id), engine)
    assert done.status is JobStatus.FINISHED and {r.status for r in done.results.values()} == {ItemStatus.DONE}
    assert all(owner.repo.get(i).thumbnail_key == record_keys_of(owner.repo.get(i).s3_key).thumbnail
               for i in inside)
    mine = member.repo.get(personal)
    assert mine.thumbnail_key is None
    listed = s3_client.list_objects_v2(Bucket=store.bucket, Prefix=record_keys_of(mine.s3_key).prefix)
    assert [o["Key"] for o in listed.get("Contents", [])] == [mine.s3_key]
