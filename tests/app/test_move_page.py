"""AppTest of "Move to study …" (demo mode), in My files' detail panel and under the Studies page's recordings list:
an owner of both spaces moves a recording with its objects; a member who owns no other space is not offered it."""

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


def _signed_in(email: str, password: str, page: str = "pages/files.py") -> AppTest:
    """My files (or ``page``) for the account (the app starts the demo's S3 server on its first run)."""
    return signed_in_app(page, email=email, password=password)


def _keys_under(prefix: str) -> list[str]:
    listed = _s3().list_objects_v2(Bucket=demo._running.s3.bucket, Prefix=prefix)
    return sorted(o["Key"].rsplit("/", 1)[-1] for o in listed.get("Contents", []))


def _study_shown(at: AppTest, study: str) -> AppTest:
    """The Studies page, showing ``study``, with its first recording selected."""
    at.selectbox(key=state_keys.STUDIES_SELECTED).set_value(study)
    at.run()
    return select_rows(at, 0, table=state_keys.studies_recordings(""))


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


def test_a_study_owner_moves_a_recording_from_the_studies_page_to_another_study_they_own() -> None:
    db = start_demo([]).db_path
    email, password, user_id = new_demo_account()
    repo = SqliteRepository(db, user_id)
    source, target = repo.create_study("Cycling").id, repo.create_study("Rowing").id
    at = _signed_in(email, password, "pages/studies.py")
    record_id = _stored(db, user_id, source)
    at = _study_shown(at, source)
    box = at.selectbox(key=state_keys.files_record("move_to", record_id))
    assert sorted(box.options) == sorted(["My files (personal space)", "Rowing"])  # the uploader's own, and Rowing
    box.set_value(target)
    next(b for b in at.button if b.key == state_keys.files_record("move", record_id)).click()
    at.run()
    assert not at.exception, at.exception
    assert any("Moved rest-1.mp4" in s.value for s in at.success)
    assert any("No recordings in this study yet" in i.value for i in at.info)  # gone from Cycling's list
    assert SqliteRepository(db, user_id).get(record_id).study_id == target
    assert _keys_under(f"studies/{source}/") == []
    assert _keys_under(f"studies/{target}/") == sorted(FILES)


def test_the_studies_page_offers_no_move_to_a_member_nor_of_a_recording_the_owner_has_nowhere_to_move() -> None:
    db = start_demo([]).db_path
    owner_email, owner_password, owner_id = new_demo_account()
    member_email, member_password, member_id = new_demo_account()
    owner = SqliteRepository(db, owner_id)
    study = owner.create_study("Only one").id
    owner.add_member(study, member_email, Role.MEMBER)
    _stored(db, member_id, study)

    member = _signed_in(member_email, member_password, "pages/studies.py")
    assert not [k for k in member._session_state.filtered_state
                if str(k).startswith(state_keys.studies_recordings(""))]  # the member's table selects nothing
    assert not any(e.label == "Move to study …" for e in member.expander)

    at = _study_shown(_signed_in(owner_email, owner_password, "pages/studies.py"), study)
    assert not any(e.label == "Move to study …" for e in at.expander)  # not the owner's upload, no other study
    assert any("rest-1.mp4 cannot be moved from here" in c.value for c in at.caption)
