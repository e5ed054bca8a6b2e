"""AppTest of the Studies page (demo mode): create a study, add members by e-mail, change a role, remove a
member; what a viewer and an outsider see; refusals as clear messages."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import boto3
from streamlit.testing.v1 import AppTest

from components import state_keys
from lib import demo
from lib.auth import DemoAuth
from lib.demo import start_demo
from lib.keys import new_record_id, record_keys
from lib.records import ListQuery, NewRecord, ResearchFields
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.studies import Role
from tests.support import videos
from tests.support.apptest import new_demo_account, select_rows, signed_in_app, store_anyway

QUOTA = 10**12


def _studies_page(email: str, password: str) -> AppTest:
    return signed_in_app("pages/studies.py", email=email, password=password)


def _in_form(at: AppTest, kind: str, form: str) -> list:
    return [w for w in getattr(at, kind) if (w.form_id or "") == form]


def _submit(at: AppTest, form: str, label: str) -> AppTest:
    next(b for b in _in_form(at, "button", form) if b.label == label).click()
    at.run()
    assert not at.exception, at.exception
    return at


def _texts(at: AppTest) -> str:
    return " ".join([*(e.value for e in at.error), *(s.value for s in at.success), *(i.value for i in at.info),
                     *(w.value for w in at.warning)]).replace("\\", "")


def _create(at: AppTest, name: str) -> AppTest:
    next(t for t in _in_form(at, "text_input", state_keys.STUDIES_NEW) if t.label == "Name").input(name)
    _in_form(at, "text_area", state_keys.STUDIES_NEW)[0].input("Night recordings, protocol v2")
    return _submit(at, state_keys.STUDIES_NEW, "Create study")


def _add(at: AppTest, email: str, role: Role) -> AppTest:
    _in_form(at, "text_input", state_keys.STUDIES_ADD)[0].input(email)
    _in_form(at, "selectbox", state_keys.STUDIES_ADD)[0].set_value(role)
    return _submit(at, state_keys.STUDIES_ADD, "Add")


def _members(at: AppTest) -> dict[str, str]:
    table = at.dataframe[0].value
    return dict(zip(table["E-mail"], table["Role"], strict=True))


def _invites(at: AppTest) -> dict[str, str]:
    """The pending invitations table (the members table comes first)."""
    table = next(d.value for d in at.dataframe if "Invited" in d.value.columns)
    return dict(zip(table["E-mail"], table["Role"], strict=True))


def _shown_study(at: AppTest) -> str:
    box = at.selectbox(key=state_keys.STUDIES_SELECTED)
    return box.format_func(box.value)


def test_an_owner_creates_a_study_adds_members_and_manages_their_roles() -> None:
    owner_email, owner_password, _ = new_demo_account()
    member_email, _, member_id = new_demo_account()
    viewer_email, viewer_password, viewer_id = new_demo_account()
    at = _studies_page(owner_email, owner_password)
    assert "not in any study yet" in _texts(at)

    at = _create(at, "Sleep 2025")
    assert "Sleep 2025 created" in _texts(at)
    assert _shown_study(at) == "Sleep 2025 (owner)"
    assert _members(at) == {owner_email: "owner"}

    at = _add(at, member_email.upper(), Role.MEMBER)
    at = _add(at, viewer_email, Role.MEMBER)
    assert _members(at) == {owner_email: "owner", member_email: "member", viewer_email: "member"}
    at = _add(at, "nobody-here@lab.test", Role.VIEWER)
    assert "nobody-here@lab.test has no PulseVault account yet: invited to Sleep 2025 as viewer" in _texts(at)
    assert _invites(at) == {"nobody-here@lab.test": "viewer"}
    _in_form(at, "selectbox", state_keys.STUDIES_CANCEL_INVITE)[0].set_value("nobody-here@lab.test")
    at = _submit(at, state_keys.STUDIES_CANCEL_INVITE, "Cancel invitation")
    assert "invitation of nobody-here@lab.test to Sleep 2025 was cancelled" in _texts(at)
    assert not _in_form(at, "button", state_keys.STUDIES_CANCEL_INVITE)
    at = _add(at, member_email, Role.VIEWER)
    assert "already a member" in _texts(at)

    who, role = _in_form(at, "selectbox", state_keys.STUDIES_ROLE)
    who.set_value(viewer_id)
    role.set_value(Role.VIEWER)
    at = _submit(at, state_keys.STUDIES_ROLE, "Change role")
    assert _members(at)[viewer_email] == "viewer"

    _in_form(at, "selectbox", state_keys.STUDIES_REMOVE)[0].set_value(member_id)
    at = _submit(at, state_keys.STUDIES_REMOVE, "Remove")
    assert "Tick the box" in _texts(at)
    assert member_email in _members(at)
    _in_form(at, "checkbox", state_keys.STUDIES_REMOVE)[0].check()
    at = _submit(at, state_keys.STUDIES_REMOVE, "Remove")
    assert member_email not in _members(at)

    seen = _studies_page(viewer_email, viewer_password)
    assert _shown_study(seen) == "Sleep 2025 (viewer)"
    assert not [b for b in seen.button if b.label in ("Add", "Change role", "Remove", "Delete study")]
    assert "No recordings in this study yet" in _texts(seen)

    at = _submit(at, state_keys.STUDIES_DELETE, "Delete study")
    assert "Tick the box" in _texts(at)
    _in_form(at, "checkbox", state_keys.STUDIES_DELETE)[0].check()
    at = _submit(at, state_keys.STUDIES_DELETE, "Delete study")
    assert "Study Sleep 2025 deleted" in _texts(at)
    assert "not in any study yet" in _texts(at)


def test_the_last_owner_is_told_to_hand_over_before_leaving() -> None:
    email, password, _ = new_demo_account()
    at = _create(_studies_page(email, password), "Solo study")
    next(b for b in at.button if b.label == "Leave this study").click()
    at.run()
    assert "A study needs an owner: make someone else an owner first" in _texts(at)
    assert _shown_study(at) == "Solo study (owner)"


def test_members_see_the_studys_recordings_and_outsiders_see_nothing_of_it() -> None:
    db = start_demo([]).db_path
    owner_email, owner_password, owner_id = new_demo_account()
    member_email, _, member_id = new_demo_account()
    outsider_email, outsider_password, _ = new_demo_account()
    owner = SqliteRepository(db, owner_id)
    study = owner.create_study("Treadmill")
    owner.add_member(study.id, member_email, Role.MEMBER)
    record_id = new_record_id()
    keys = record_keys(member_id, record_id, "mp4", datetime.now(UTC), study.id)
    SqliteServerRecords(db, member_id).reserve(NewRecord(
        id=record_id, s3_key=keys.original, bucket="demo", original_name="run-3.mp4", content_type="video/mp4",
        size_bytes=2048, study_id=study.id, research=ResearchFields(subject_id="S12")), QUOTA)

    at = _studies_page(owner_email, owner_password)
    recordings = at.dataframe[1].value
    assert list(recordings["Name"]) == ["run-3.mp4"]
    assert list(recordings["Subject"]) == ["S12"]
    assert list(recordings["Uploaded by"]) == [member_email]

    outsider = _studies_page(outsider_email, outsider_password)
    assert "not in any study yet" in _texts(outsider)
    assert "Treadmill" not in " ".join(str(e.value) for e in outsider.selectbox)


def test_a_member_uploads_into_the_study_and_a_viewer_is_not_offered_it(tmp_path) -> None:
    db = start_demo([]).db_path
    _, _, owner_id = new_demo_account()
    member_email, member_password, member_id = new_demo_account()
    viewer_email, viewer_password, _ = new_demo_account()
    owner = SqliteRepository(db, owner_id)
    study = owner.create_study("Cold pressor")
    owner.add_member(study.id, member_email, Role.MEMBER)
    owner.add_member(study.id, viewer_email, Role.VIEWER)

    at = signed_in_app("pages/upload.py", email=member_email, password=member_password)
    target = at.selectbox(key=state_keys.UPLOAD_TARGET)
    assert [target.format_func(o) for o in ("", study.id)] == ["My files (personal space)", "Study: Cold pressor"]
    target.set_value(study.id).run()
    clip = videos.write_opencv(tmp_path / "clip.avi", "MJPG", frames=23, size=(62, 46))
    at.file_uploader(key=state_keys.UPLOAD_FILES).set_value([("cold 1.avi", clip.read_bytes(), "video/x-msvideo")])
    at.run()
    store_anyway(at)
    next(b for b in at.button if b.label == "Upload").click()
    at.run()
    assert not at.exception, at.exception
    assert any("Stored and ready" in s.value for s in at.success)

    [row] = owner.list(ListQuery(study_id=study.id)).records
    assert (row.original_name, row.user_id, row.study_id) == ("cold 1.avi", member_id, study.id)
    assert row.s3_key.startswith(f"studies/{study.id}/") and row.thumbnail_key.startswith(f"studies/{study.id}/")
    assert SqliteRepository(db, member_id).list(ListQuery()).total == 0  # not in the personal space

    seen = signed_in_app("pages/upload.py", email=viewer_email, password=viewer_password)
    assert not [s for s in seen.selectbox if s.key == state_keys.UPLOAD_TARGET]  # nowhere but personal
    assert any("viewers see and play" in c.value for c in seen.caption)


def _open_study_in_my_files(email: str, password: str, study_id: str) -> AppTest:
    at = signed_in_app("pages/files.py", email=email, password=password)
    at.selectbox(key=state_keys.FILES_SPACE).set_value(study_id).run()
    assert not at.exception, at.exception
    return select_rows(at, 0)


def test_my_files_shows_a_studys_recordings_with_each_roles_actions_only() -> None:
    db = start_demo([]).db_path
    owner_email, owner_password, owner_id = new_demo_account()
    member_email, member_password, member_id = new_demo_account()
    viewer_email, viewer_password, _ = new_demo_account()
    owner = SqliteRepository(db, owner_id)
    study = owner.create_study("Rest and exercise")
    owner.add_member(study.id, member_email, Role.MEMBER)
    owner.add_member(study.id, viewer_email, Role.VIEWER)
    record_id = new_record_id()
    keys = record_keys(member_id, record_id, "mp4", datetime.now(UTC), study.id)
    server = SqliteServerRecords(db, member_id)
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket="demo", original_name="rest-1.mp4",
                             content_type="video/mp4", size_bytes=2048, study_id=study.id), QUOTA)
    server.mark_ready(record_id, size_bytes=2048, sha256=None, video=None, thumbnail_key=keys.thumbnail,
                      preview_key=None)

    def actions(at: AppTest) -> set[str]:
        return {b.label for b in at.button} | {e.label for e in at.expander}

    viewer = _open_study_in_my_files(viewer_email, viewer_password, study.id)
    assert list(viewer.dataframe[0].value["name"]) == ["rest-1.mp4"]
    assert "Download original" in {b.label for b in viewer.get("link_button")}
    assert not {"Delete", "Save", "Re-analyse", "Share link"} & actions(viewer)
    assert next(b for b in viewer.button if b.key == state_keys.FILES_DELETE_SELECTED).disabled
    assert any("viewer of this study" in c.value for c in viewer.caption)

    member = _open_study_in_my_files(member_email, member_password, study.id)
    assert {"Delete", "Save", "Re-analyse", "Share link"} <= actions(member)

    at = _open_study_in_my_files(owner_email, owner_password, study.id)
    assert {"Save", "Share link", "Delete"} <= actions(at)
    assert "Re-analyse" not in actions(at)  # the uploader's (the server writes their rows' facts)
    subject = next(t for t in at.text_input if t.key == state_keys.files_record("subject", record_id))
    subject.input("S03")
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert not at.exception, at.exception
    assert owner.get(record_id).research.subject_id == "S03"

    personal = signed_in_app("pages/files.py", email=member_email, password=member_password)
    assert "rest-1.mp4" not in " ".join(str(v) for d in personal.dataframe for v in d.value.get("name", []))


def _aged_study_recording(db, member_id: str, study_id: str, days: int, subject: str) -> tuple[str, str]:
    """A ready study recording uploaded ``days`` ago, with its objects in the demo bucket: (id, key prefix)."""
    record_id = new_record_id()
    uploaded = datetime.now(UTC) - timedelta(days=days)
    keys = record_keys(member_id, record_id, "mp4", uploaded, study_id)
    backends = demo._running
    assert backends is not None
    client = boto3.client("s3", endpoint_url=backends.s3.endpoint_url, region_name=backends.s3.region,
                          aws_access_key_id=backends.s3.access_key_id,
                          aws_secret_access_key=backends.s3.secret_access_key)
    for key in (keys.original, keys.thumbnail):
        client.put_object(Bucket=backends.s3.bucket, Key=key, Body=b"bytes")
    server = SqliteServerRecords(db, member_id)
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=backends.s3.bucket,
                             original_name=f"{subject}.mp4", content_type="video/mp4", size_bytes=5,
                             study_id=study_id, research=ResearchFields(subject_id=subject)), QUOTA)
    server.mark_ready(record_id, size_bytes=5, sha256=None, video=None, thumbnail_key=keys.thumbnail,
                      preview_key=None)
    with sqlite3.connect(db) as conn:
        conn.execute("update user_files set created_at = ? where id = ?",
                     (uploaded.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), record_id))
    left = client.list_objects_v2(Bucket=backends.s3.bucket, Prefix=keys.prefix)
    assert left.get("KeyCount") == 2
    return record_id, keys.prefix


def _frame_with(at: AppTest, *columns: str):
    return next(d.value for d in at.dataframe if list(d.value.columns) == list(columns))


def test_an_owner_sets_a_retention_period_and_erases_what_is_past_it_in_one_step() -> None:
    db = start_demo([]).db_path
    owner_email, owner_password, owner_id = new_demo_account()
    member_email, member_password, member_id = new_demo_account()
    owner = SqliteRepository(db, owner_id)
    study = owner.create_study("Retention trial")
    owner.add_member(study.id, member_email, Role.MEMBER)
    old_id, old_prefix = _aged_study_recording(db, member_id, study.id, 40, "S-old")
    recent_id, _ = _aged_study_recording(db, member_id, study.id, 3, "S-recent")

    at = _studies_page(owner_email, owner_password)
    assert "No recording of this study has been erased" in " ".join(c.value for c in at.caption)
    _in_form(at, "number_input", state_keys.STUDIES_RETENTION)[0].set_value(30)
    at = _submit(at, state_keys.STUDIES_RETENTION, "Save retention period")
    assert "1 recording is past the retention period (30 days)" in _texts(at)
    assert list(_frame_with(at, "Name", "Subject", "Status", "Uploaded")["Name"]) == ["S-old.mp4"]

    at = _submit(at, state_keys.STUDIES_ERASE_EXPIRED, "Erase recordings past retention")
    assert "Tick the box" in _texts(at)
    _in_form(at, "checkbox", state_keys.STUDIES_ERASE_EXPIRED)[0].check()
    at = _submit(at, state_keys.STUDIES_ERASE_EXPIRED, "Erase recordings past retention")
    assert "Erased 1 recording; a tombstone keeps each." in _texts(at)
    assert [r.id for r in owner.list(ListQuery(study_id=study.id)).records] == [recent_id]
    stones = _frame_with(at, "Record id", "Subject", "Why", "Erased", "By")
    assert (list(stones["Record id"]), list(stones["Subject"]), list(stones["Why"]), list(stones["By"])) == (
        [old_id], ["S-old"], ["retention"], [owner_email])
    backends = demo._running
    assert backends is not None
    client = boto3.client("s3", endpoint_url=backends.s3.endpoint_url, region_name=backends.s3.region,
                          aws_access_key_id=backends.s3.access_key_id,
                          aws_secret_access_key=backends.s3.secret_access_key)
    assert not client.list_objects_v2(Bucket=backends.s3.bucket, Prefix=old_prefix).get("KeyCount")

    member = _studies_page(member_email, member_password)  # not an owner: no retention section at all
    assert not _in_form(member, "number_input", state_keys.STUDIES_RETENTION)
    assert "Retention and erasures" not in " ".join(h.value for h in member.subheader)


def test_an_invited_address_joins_the_study_when_it_signs_up() -> None:
    owner_email, owner_password, _ = new_demo_account()
    at = _create(_studies_page(owner_email, owner_password), "Invited lab")
    newcomer = f"newcomer-{new_record_id()[:8]}@lab.test"
    at = _add(at, newcomer.upper(), Role.MEMBER)
    assert _invites(at) == {newcomer: "member"}
    DemoAuth(start_demo([]).db_path).sign_up(newcomer, "pulse-test-password")
    joined = _studies_page(newcomer, "pulse-test-password")
    assert _shown_study(joined) == "Invited lab (member)"
    at.run()
    assert _members(at)[newcomer] == "member"
    assert not [d for d in at.dataframe if "Invited" in d.value.columns]
