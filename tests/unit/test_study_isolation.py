"""Studies are walled from each other in demo mode: a member of study X reaches nothing of study Y by any input
(tests/support/study_isolation.py; the cloud stores run the same scenario in the sql tier)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from lib.auth import DemoAuth
from lib.jobs.store import SqliteJobs
from lib.keys import Space, new_record_id, record_keys
from lib.pipeline.backends import Backends
from lib.pipeline.cleanup import remove_unfinished
from lib.records import NewRecord, Status
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.studies import Role
from lib.usage import UserRows
from tests.support.study_isolation import check_no_way_from_x_into_y, two_studies
from tests.support.unit_world import SETTINGS

PEOPLE = ("x_owner", "x_member", "y_owner", "y_member")


def test_a_member_of_one_study_reaches_nothing_of_another(tmp_path: Path, store) -> None:
    db = tmp_path / "demo.sqlite3"
    emails = {name: f"{name.replace('_', '.')}@lab.test" for name in PEOPLE}
    people = {}
    for name in PEOPLE:
        user_id = DemoAuth(db).sign_up(emails[name], "password-1234").session.user_id
        people[name] = UserRows(SqliteRepository(db, user_id), SqliteServerRecords(db, user_id))
    world = two_studies(store, people, emails)
    check_no_way_from_x_into_y(world, store, SqliteJobs(db, people["x_member"].repo.user_id))


def test_a_member_cannot_discard_another_members_unfinished_upload(tmp_path: Path, store) -> None:
    """Retry and discard clean up an unfinished upload's objects: only the uploader's own (RecordRights.manage_files),
    never a fellow member's, nor one of a study where the caller only views."""
    db = tmp_path / "demo.sqlite3"
    people = {}
    for name in ("owner", "member", "viewer"):
        user_id = DemoAuth(db).sign_up(f"{name}@lab.test", "password-1234").session.user_id
        people[name] = UserRows(SqliteRepository(db, user_id), SqliteServerRecords(db, user_id))
    study = people["owner"].repo.create_study("Study X").id
    people["owner"].repo.add_member(study, "member@lab.test", Role.MEMBER)
    people["owner"].repo.add_member(study, "viewer@lab.test", Role.VIEWER)
    owner = people["owner"]
    record_id = new_record_id()
    keys = record_keys(owner.repo.user_id, record_id, "mp4", datetime.now(UTC), study)
    owner.server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=store.bucket, original_name="o.mp4",
                                   content_type="video/mp4", size_bytes=1, study_id=study), 10**12)
    store._client.put_object(Bucket=store.bucket, Key=keys.original, Body=b"x")  # half uploaded
    for name in ("member", "viewer"):
        backends = Backends(SETTINGS, store, people[name].repo, people[name].server, study_id=study)
        remove_unfinished(record_id, backends)
        assert store.head(keys.original, owner=Space(owner.repo.user_id, study)).size == 1
        assert owner.repo.get(record_id).status is Status.PENDING
