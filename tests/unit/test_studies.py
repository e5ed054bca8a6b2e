"""Studies: the rules of lib/studies.py, and demo mode's SQLite stores applying them as sql/005_studies.sql's
row-level security does in the cloud (every role × operation; tests/sql/test_rls_studies.py proves the SQL)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lib.errors import AccessDenied, KeyOwnershipError, NotFound, ValidationError
from lib.keys import Space, check_owner, check_record_key, record_keys, record_keys_of
from lib.library import delete_records, playback_url
from lib.records import ListQuery, NewRecord, ResearchFields
from lib.studies import (
    MAX_NAME_CHARS,
    Action,
    Role,
    allows,
    invitee_email,
    may_delete,
    require,
    study_name,
)
from tests.support.audit import trail_of
from tests.support.people import Person, demo_person
from tests.support.unit_world import BUCKET

QUOTA = 10**12


@pytest.mark.parametrize(("role", "actions"), [
    (Role.VIEWER, {Action.VIEW}),
    (Role.MEMBER, {Action.VIEW, Action.UPLOAD, Action.EDIT_RESEARCH, Action.DELETE_OWN, Action.SHARE,
                   Action.RUN_JOBS}),
    (Role.OWNER, set(Action)),
    (None, set()),
])
def test_each_role_allows_exactly_its_actions(role, actions):
    assert {a for a in Action if allows(role, a)} == actions


def test_who_deletes_a_recording():
    me, other, study = "me", "other", str(uuid.uuid4())
    assert may_delete(None, None, uploader_id=me, caller_id=me)
    assert not may_delete(None, None, uploader_id=other, caller_id=me)
    assert may_delete(study, Role.MEMBER, uploader_id=me, caller_id=me)
    assert not may_delete(study, Role.MEMBER, uploader_id=other, caller_id=me)
    assert may_delete(study, Role.OWNER, uploader_id=other, caller_id=me)
    assert not may_delete(study, Role.VIEWER, uploader_id=me, caller_id=me)
    assert not may_delete(study, None, uploader_id=me, caller_id=me)  # removed: not even their own


def test_a_refusal_names_the_role_needed():
    with pytest.raises(AccessDenied, match=r"member role.*you are a viewer"):
        require(Role.VIEWER, Action.UPLOAD)


@pytest.mark.parametrize(("given", "stored"), [("  Sleep   2024 ", "Sleep 2024"), ("a\x00b", "ab")])
def test_study_names_are_trimmed(given, stored):
    assert study_name(given) == stored


@pytest.mark.parametrize("name", ["", "   ", "x" * (MAX_NAME_CHARS + 1)])
def test_unusable_study_names_are_refused_in_words(name):
    with pytest.raises(ValidationError, match="name"):
        study_name(name)


def test_an_invitee_address_is_normalised_or_refused():
    assert invitee_email(" Ada@Lab.Test ") == "ada@lab.test"
    for bad in ("", "ada", "ada@", "a da@lab.test"):
        with pytest.raises(ValidationError):
            invitee_email(bad)


def test_study_keys_lie_under_the_study_and_are_checked_against_it():
    user, study, other, record = (str(uuid.uuid4()) for _ in range(4))
    keys = record_keys(user, record, "mp4", datetime(2024, 5, 1, tzinfo=UTC), study)
    assert keys.original == f"studies/{study}/2024/05/{record}/original.mp4"
    assert check_record_key(keys.preview, user, record, "preview", study) == keys.preview
    for wrong_study in (None, other):
        with pytest.raises(KeyOwnershipError):
            check_record_key(keys.original, user, record, "original", wrong_study)
    with pytest.raises(KeyOwnershipError):
        record_keys(user, record, "mp4", datetime.now(UTC), "../x")


# --- the demo's stores ------------------------------------------------------------------


@dataclass(frozen=True)
class Lab:
    db: Path
    people: dict[str, Person]
    study: str

    def __getitem__(self, name: str) -> Person:
        return self.people[name]


def _upload(person: Person, study: str | None, sha256: str | None = None, **research: str) -> str:
    record_id = str(uuid.uuid4())
    keys = record_keys(person.id, record_id, "mp4", datetime.now(UTC), study)
    person.server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket="demo", original_name="r.mp4",
                                    content_type="video/mp4", size_bytes=10, study_id=study,
                                    research=ResearchFields(**research)), QUOTA)
    person.server.mark_ready(record_id, size_bytes=10, sha256=sha256, video=None, thumbnail_key=keys.thumbnail,
                             preview_key=None)
    return record_id


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return make_lab(tmp_path)


def make_lab(tmp_path: Path) -> Lab:
    """An owner's study with a member and a viewer, and an outsider (tests/unit/test_audit.py uses it too)."""
    db = tmp_path / "demo.sqlite3"
    people = {name: demo_person(db, f"{name}@lab.test") for name in ("owner", "member", "viewer", "outsider")}
    study = people["owner"].repo.create_study(" Sleep 2024 ", "night recordings").id
    people["owner"].repo.add_member(study, "Member@Lab.test", Role.MEMBER)
    people["owner"].repo.add_member(study, "viewer@lab.test", Role.VIEWER)
    return Lab(db, people, study)


def test_a_new_study_is_its_creators_and_members_see_it_with_their_role(lab):
    assert [(s.name, s.role) for s in lab["owner"].repo.studies()] == [("Sleep 2024", Role.OWNER)]
    assert [(s.name, s.role) for s in lab["viewer"].repo.studies()] == [("Sleep 2024", Role.VIEWER)]
    assert [(m.email, m.role) for m in lab["member"].repo.members(lab.study)] == [
        ("owner@lab.test", Role.OWNER), ("member@lab.test", Role.MEMBER), ("viewer@lab.test", Role.VIEWER)]


def test_an_outsider_sees_nothing_of_a_study_not_even_its_name(lab):
    outsider = lab["outsider"].repo
    record = _upload(lab["member"], lab.study)
    assert outsider.studies() == []
    for reach in (lambda: outsider.study(lab.study), lambda: outsider.members(lab.study),
                  lambda: outsider.list(ListQuery(study_id=lab.study)), lambda: outsider.get(record)):
        with pytest.raises(NotFound) as refused:
            reach()
        assert "Sleep" not in str(refused.value)
    assert outsider.get_many([record]) == []


@pytest.mark.parametrize("role", ["owner", "member", "viewer"])
def test_every_member_lists_and_opens_the_studys_recordings(lab, role):
    record = _upload(lab["member"], lab.study, subject_id="S12")
    page = lab[role].repo.list(ListQuery(study_id=lab.study, text="S12"))
    assert [r.id for r in page.records] == [record]
    assert lab[role].repo.get(record).study_id == lab.study


def test_study_recordings_stay_out_of_the_personal_space_and_personal_ones_out_of_the_study(lab):
    in_study = _upload(lab["member"], lab.study)
    personal = _upload(lab["member"], None)
    assert [r.id for r in lab["member"].repo.list(ListQuery()).records] == [personal]
    assert [r.id for r in lab["owner"].repo.list(ListQuery(study_id=lab.study)).records] == [in_study]
    with pytest.raises(NotFound):
        lab["owner"].repo.get(personal)


@pytest.mark.parametrize(("role", "edits"), [("owner", True), ("member", True), ("viewer", False),
                                             ("outsider", False)])
def test_members_edit_research_fields_of_any_study_recording_viewers_do_not(lab, role, edits):
    record = _upload(lab["member"], lab.study)
    if edits:
        assert lab[role].repo.update_research(record, ResearchFields(subject_id="S7")).research.subject_id == "S7"
    else:
        with pytest.raises(NotFound):
            lab[role].repo.update_research(record, ResearchFields(subject_id="S7"))


@pytest.mark.parametrize(("role", "uploads"), [("owner", True), ("member", True), ("viewer", False),
                                               ("outsider", False)])
def test_only_members_and_owners_upload_into_a_study(lab, role, uploads):
    if uploads:
        assert lab[role].repo.get(_upload(lab[role], lab.study)).study_id == lab.study
        return
    with pytest.raises(AccessDenied if role == "viewer" else NotFound):
        _upload(lab[role], lab.study)


def test_a_study_upload_needs_a_study_key(lab):
    record_id = str(uuid.uuid4())
    personal = record_keys(lab["member"].id, record_id, "mp4", datetime.now(UTC))
    with pytest.raises(KeyOwnershipError):
        lab["member"].server.reserve(NewRecord(id=record_id, s3_key=personal.original, bucket="demo",
                                               original_name="r.mp4", content_type="video/mp4", size_bytes=1,
                                               study_id=lab.study), QUOTA)


@pytest.mark.parametrize(("role", "own", "deletes"), [
    ("owner", False, True), ("member", True, True), ("member", False, False), ("viewer", False, False),
    ("outsider", False, False)])
def test_the_uploader_or_an_owner_deletes_a_study_recording(lab, role, own, deletes):
    record = _upload(lab[role] if own else lab["owner" if role == "member" else "member"], lab.study)
    if deletes:
        lab[role].server.delete(record)
        with pytest.raises(NotFound):
            lab["owner"].repo.get(record)
        return
    with pytest.raises(AccessDenied if role in ("member", "viewer") else NotFound):
        lab[role].server.delete(record)
    assert lab["owner"].repo.get(record).id == record


@pytest.mark.parametrize("role", ["member", "viewer", "outsider"])
def test_only_owners_manage_members(lab, role):
    repo = lab[role].repo
    expected = NotFound if role == "outsider" else AccessDenied
    with pytest.raises(expected):
        repo.add_member(lab.study, "outsider@lab.test", Role.OWNER)
    with pytest.raises(expected):
        repo.set_role(lab.study, lab[role].id, Role.OWNER)
    with pytest.raises(expected):
        repo.remove_member(lab.study, lab["owner"].id)
    assert len(lab["owner"].repo.members(lab.study)) == 3


def test_adding_a_member_again_says_what_to_do(lab):
    with pytest.raises(ValidationError, match="already a member"):
        lab["owner"].repo.add_member(lab.study, "viewer@lab.test", Role.MEMBER)


def test_an_owner_changes_a_role_and_the_new_rights_hold_at_once(lab):
    record = _upload(lab["member"], lab.study)
    lab["owner"].repo.set_role(lab.study, lab["viewer"].id, Role.MEMBER)
    assert lab["viewer"].repo.update_research(record, ResearchFields(notes="checked")).research.notes == "checked"
    lab["owner"].repo.set_role(lab.study, lab["member"].id, Role.VIEWER)
    with pytest.raises(NotFound):
        lab["member"].repo.update_research(record, ResearchFields(notes="x"))


def test_a_removed_member_loses_access_at_once_even_to_their_own_upload(lab):
    record = _upload(lab["member"], lab.study)
    lab["owner"].repo.remove_member(lab.study, lab["member"].id)
    member = lab["member"].repo
    assert member.studies() == []
    with pytest.raises(NotFound):
        member.get(record)
    with pytest.raises(NotFound):
        member.list(ListQuery(study_id=lab.study))
    with pytest.raises(NotFound):
        lab["member"].server.delete(record)


def test_a_member_may_leave_but_the_last_owner_may_not(lab):
    lab["viewer"].repo.remove_member(lab.study, lab["viewer"].id)
    assert lab["viewer"].repo.studies() == []
    owner = lab["owner"].repo
    for step_down in (lambda: owner.remove_member(lab.study, lab["owner"].id),
                      lambda: owner.set_role(lab.study, lab["owner"].id, Role.MEMBER)):
        with pytest.raises(ValidationError, match="needs an owner"):
            step_down()
    owner.set_role(lab.study, lab["member"].id, Role.OWNER)
    owner.remove_member(lab.study, lab["owner"].id)
    assert owner.studies() == []


def test_the_server_writes_facts_of_a_study_recording_with_keys_in_its_study(lab):
    record = _upload(lab["member"], lab.study)
    personal_key = record_keys(lab["member"].id, record, "mp4", datetime.now(UTC)).preview
    with pytest.raises(KeyOwnershipError):
        lab["member"].server.mark_ready(record, size_bytes=10, sha256=None, video=None, thumbnail_key=None,
                                        preview_key=personal_key)
    # Only the uploader's server path writes a row's facts; an owner may only mark it failed (deleting it).
    with pytest.raises(NotFound):
        lab["owner"].server.set_analysis(record, {"hr_bpm": 60})
    for role in ("member", "viewer", "outsider"):
        other = _upload(lab["owner"], lab.study)
        with pytest.raises(NotFound):
            lab[role].server.mark_failed(other, "no")
    assert lab["owner"].server.mark_failed(record, "deleting").error == "deleting"


def test_a_study_space_reaches_its_own_keys_only():
    user, study, other = (str(uuid.uuid4()) for _ in range(3))
    key = record_keys(user, str(uuid.uuid4()), "mp4", datetime.now(UTC), study).original
    assert check_owner(key, Space(user, study)) == key
    for owner in (user, Space(user, other), Space(user)):
        with pytest.raises(KeyOwnershipError):
            check_owner(key, owner)
    with pytest.raises(KeyOwnershipError):
        check_owner(f"studies/{study}/../{other}/x", Space(user, study))


def _objects(store) -> set[str]:
    listed = store._client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"] for o in listed}


def test_study_recordings_are_played_by_members_and_deleted_by_uploader_or_owner(lab, store):
    record = _upload(lab["member"], lab.study)
    keys = record_keys_of(lab["owner"].repo.get(record).s3_key)
    for key in (keys.original, keys.thumbnail):
        store._client.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    assert keys.prefix in playback_url(store, lab["viewer"].repo, record, trail=trail_of(lab["viewer"].repo)).url
    with pytest.raises(NotFound):
        playback_url(store, lab["outsider"].repo, record, trail=trail_of(lab["outsider"].repo))

    for role in ("viewer", "outsider"):
        report = delete_records(store, lab[role].repo, lab[role].server, [record], trail=trail_of(lab[role].repo))
        assert not report.deleted and report.failed
    assert _objects(store) == {keys.original, keys.thumbnail}
    assert lab["owner"].repo.get(record).status.value == "ready"  # refused before anything changed

    report = delete_records(store, lab["owner"].repo, lab["owner"].server, [record], trail=trail_of(lab["owner"].repo))
    assert report.ok and report.deleted == (record,)
    assert _objects(store) == set()
    with pytest.raises(NotFound):
        lab["member"].repo.get(record)


def test_a_duplicate_is_looked_for_in_the_space_the_upload_goes_to(lab):
    in_study = _upload(lab["member"], lab.study, sha256="ab" * 32)
    personal = _upload(lab["owner"], None, sha256="cd" * 32)
    assert lab["owner"].repo.find_ready_by_sha256("ab" * 32, lab.study).id == in_study  # any member's upload
    assert lab["owner"].repo.find_ready_by_sha256("ab" * 32) is None  # not in the personal space
    assert lab["owner"].repo.find_ready_by_sha256("cd" * 32).id == personal
    assert lab["member"].repo.find_ready_by_sha256("cd" * 32, lab.study) is None
    with pytest.raises(NotFound):
        lab["outsider"].repo.find_ready_by_sha256("ab" * 32, lab.study)


def test_only_an_owner_deletes_a_study_and_only_once_it_is_empty(lab):
    record = _upload(lab["member"], lab.study)
    for role in ("member", "viewer", "outsider"):
        with pytest.raises(AccessDenied if role != "outsider" else NotFound):
            lab[role].repo.delete_study(lab.study)
    with pytest.raises(ValidationError, match="still holds recordings"):
        lab["owner"].repo.delete_study(lab.study)
    lab["member"].server.delete(record)
    lab["owner"].repo.delete_study(lab.study)
    for role in ("owner", "member", "viewer"):
        assert lab[role].repo.studies() == []
