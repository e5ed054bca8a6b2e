"""AppTest of "Move to study …" in My files' detail panel (demo mode): an owner of both spaces moves a recording
with its objects; a member who owns no other space is not offered it."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
from botocore.config import Config
from streamlit.testing.v1 import AppTest

from components import state_keys
from lib import demo
from lib.demo import start_demo
from lib.keys import new_record_id, record_keys
from lib.records import NewRecord
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.studies import Role
from tests.support.apptest import new_demo_account, select_rows, signed_in_app

QUOTA = 10**12
FILES = ("original.mp4", "thumb.jpg")


def _s3():
    s3 = demo._running.s3
    return boto3.client("s3", endpoint_url=s3.endpoint_url, region_name=s3.region,
                        aws_access_key_id=s3.access_key_id, aws_secret_access_key=s3.secret_access_key,
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def _stored(db, user_id: str, study: str | None) -> str:
    """A ready recording of ``user_id``'s with its objects in the demo bucket."""
    record_id = new_record_id()
    keys = record_keys(user_id, record_id, "mp4", datetime.now(UTC), study)
    server = SqliteServerRecords(db, user_id)
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=demo._running.s3.bucket,
                             original_name="rest-1.mp4", content_type="video/mp4", size_bytes=5, study_id=study), QUOTA)
    for name in FILES:
        _s3().put_object(Bucket=demo._running.s3.bucket, Key=f"{keys.prefix}{name}", Body=b"bytes")
    server.mark_ready(record_id, size_bytes=5, sha256=None, video=None, thumbnail_key=keys.thumbnail,
                      preview_key=None)
    return record_id


def _signed_in(email: str, password: str) -> AppTest:
    """My files for the account (the app starts the demo's S3 server on its first run)."""
    return signed_in_app("pages/files.py", email=email, password=password)


def _select_first(at: AppTest) -> AppTest:
    at.run()
    at = select_rows(at, 0)
    assert not at.exception, at.exception
    return at


def test_an_owner_moves_a_personal_recording_into_their_study() -> None:
    db = start_demo([]).db_path
    email, password, user_id = new_demo_account()
    study = SqliteRepository(db, user_id).create_study("Treadmill").id
    at = _signed_in(email, password)
    record_id = _stored(db, user_id, None)
    at = _select_first(at)
    assert any(e.label == "Move to study …" for e in at.expander)
    at.selectbox(key=state_keys.files_record("move_to", record_id)).set_value(study)
    next(b for b in at.button if b.key == state_keys.files_record("move", record_id)).click()
    at.run()
    assert not at.exception, at.exception
    assert any("Moved rest-1.mp4" in s.value for s in at.success)
    moved = SqliteRepository(db, user_id).get(record_id)
    assert moved.study_id == study and moved.s3_key.startswith(f"studies/{study}/")
    listed = _s3().list_objects_v2(Bucket=demo._running.s3.bucket, Prefix=f"studies/{study}/")
    assert sorted(o["Key"].rsplit("/", 1)[-1] for o in listed["Contents"]) == sorted(FILES)
    assert _s3().list_objects_v2(Bucket=demo._running.s3.bucket, Prefix=f"recordings/{user_id}/")["KeyCount"] == 0


def test_a_member_who_owns_no_study_is_not_offered_a_move() -> None:
    db = start_demo([]).db_path
    _, _, owner_id = new_demo_account()
    email, password, user_id = new_demo_account()
    SqliteRepository(db, owner_id).add_member(SqliteRepository(db, owner_id).create_study("Theirs").id, email,
                                              Role.MEMBER)
    at = _signed_in(email, password)
    _stored(db, user_id, None)
    at = _select_first(at)
    assert any("rest" in s.value for s in at.subheader)  # the detail panel is open
    assert not any(e.label == "Move to study …" for e in at.expander)
