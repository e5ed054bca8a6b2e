"""Studies through the cloud stores (SupabaseRepository with each user's JWT, SupabaseServerRecords with the
service role) on the Supabase stand-in over a real PostgreSQL with sql/ applied: the same behaviour as the
demo's SQLite stores (tests/unit/test_studies.py), with row-level security deciding."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from lib.errors import AccessDenied, KeyOwnershipError, NotFound, ValidationError
from lib.keys import record_keys
from lib.records import ListQuery, NewRecord, ResearchFields
from lib.studies import Role
from lib.usage import UserRows
from tests.support.records import supabase_rows

QUOTA = 10**12


@dataclass(frozen=True)
class Lab:
    people: dict[str, UserRows]
    study: str

    def __getitem__(self, name: str) -> UserRows:
        return self.people[name]


def _upload(person: UserRows, study: str | None, sha256: str | None = None, **research: str) -> str:
    record_id = str(uuid.uuid4())
    keys = record_keys(person.repo.user_id, record_id, "mp4", datetime.now(UTC), study)
    person.server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket="lab", original_name="r.mp4",
                                    content_type="video/mp4", size_bytes=10, study_id=study,
                                    research=ResearchFields(**research)), QUOTA)
    person.server.mark_ready(record_id, size_bytes=10, sha256=sha256, video=None, thumbnail_key=keys.thumbnail,
                             preview_key=None)
    return record_id


@pytest.fixture
def lab(supabase_standin) -> Lab:
    people = {name: supabase_rows(supabase_standin, name) for name in ("owner", "member", "viewer", "outsider")}
    study = people["owner"].repo.create_study(" Sleep 2024 ", "night recordings").id
    people["owner"].repo.add_member(study, "Member@Lab.test", Role.MEMBER)
    people["owner"].repo.add_member(study, "viewer@lab.test", Role.VIEWER)
    return Lab(people, study)


def test_members_see_the_study_with_their_role_and_its_members(lab):
    assert [(s.name, s.role) for s in lab["owner"].repo.studies()] == [("Sleep 2024", Role.OWNER)]
    assert [(s.name, s.role) for s in lab["viewer"].repo.studies()] == [("Sleep 2024", Role.VIEWER)]
    assert [(m.email, m.role) for m in lab["member"].repo.members(lab.study)] == [
        ("owner@lab.test", Role.OWNER), ("member@lab.test", Role.MEMBER), ("viewer@lab.test", Role.VIEWER)]


def test_an_outsider_sees_nothing_of_a_study(lab):
    outsider = lab["outsider"].repo
    record = _upload(lab["member"], lab.study)
    assert outsider.studies() == []
    for reach in (lambda: outsider.study(lab.study), lambda: outsider.members(lab.study),
                  lambda: outsider.list(ListQuery(study_id=lab.study)), lambda: outsider.get(record)):
        with pytest.raises(NotFound):
            reach()
    assert outsider.get_many([record]) == []


@pytest.mark.parametrize("role", ["owner", "member", "viewer"])
def test_every_member_lists_the_studys_recordings_and_none_reach_a_personal_list(lab, role):
    in_study = _upload(lab["member"], lab.study, subject_id="S12")
    personal = _upload(lab["member"], None)
    assert [r.id for r in lab[role].repo.list(ListQuery(study_id=lab.study, text="S12")).records] == [in_study]
    expected_personal = [personal] if role == "member" else []
    assert [r.id for r in lab[role].repo.list(ListQuery()).records] == expected_personal
    assert lab[role].repo.find_ready_by_sha256("00") is None


@pytest.mark.parametrize(("role", "edits"), [("owner", True), ("member", True), ("viewer", False),
                                             ("outsider", False)])
def test_members_edit_research_fields_viewers_do_not(lab, role, edits):
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
    personal = record_keys(lab["member"].repo.user_id, record_id, "mp4", datetime.now(UTC))
    with pytest.raises(KeyOwnershipError):
        lab["member"].server.reserve(NewRecord(id=record_id, s3_key=personal.original, bucket="lab",
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
    with pytest.raises(AccessDenied):  # add_study_member refuses a non-owner, member or not
        repo.add_member(lab.study, "outsider@lab.test", Role.OWNER)
    expected = NotFound if role == "outsider" else AccessDenied
    with pytest.raises(expected):
        repo.set_role(lab.study, repo.user_id, Role.OWNER)
    with pytest.raises(expected):
        repo.remove_member(lab.study, lab["owner"].repo.user_id)
    assert len(lab["owner"].repo.members(lab.study)) == 3


def test_adding_a_member_again_says_what_to_do(lab):
    with pytest.raises(ValidationError, match="already a member"):
        lab["owner"].repo.add_member(lab.study, "viewer@lab.test", Role.MEMBER)


def test_a_removed_member_loses_access_at_once(lab):
    record = _upload(lab["member"], lab.study)
    lab["owner"].repo.remove_member(lab.study, lab["member"].repo.user_id)
    member = lab["member"]
    assert member.repo.studies() == []
    with pytest.raises(NotFound):
        member.repo.get(record)
    with pytest.raises(NotFound):
        member.repo.list(ListQuery(study_id=lab.study))
    with pytest.raises(NotFound):
        member.server.delete(record)


def test_a_member_may_leave_but_the_last_owner_may_not(lab):
    viewer = lab["viewer"].repo
    viewer.remove_member(lab.study, viewer.user_id)
    assert viewer.studies() == []
    owner = lab["owner"].repo
    for step_down in (lambda: owner.remove_member(lab.study, owner.user_id),
                      lambda: owner.set_role(lab.study, owner.user_id, Role.MEMBER)):
        with pytest.raises(ValidationError, match="needs an owner"):
            step_down()
    owner.set_role(lab.study, lab["member"].repo.user_id, Role.OWNER)
    owner.remove_member(lab.study, owner.user_id)
    assert owner.studies() == []


def test_an_owner_marks_any_study_recording_failed_to_delete_it_others_only_their_own(lab):
    record = _upload(lab["member"], lab.study)
    assert lab["owner"].server.mark_failed(record, "deleting").error == "deleting"
    with pytest.raises(NotFound):
        lab["owner"].server.set_analysis(record, {"hr_bpm": 60})
    theirs = _upload(lab["owner"], lab.study)
    for role in ("member", "viewer", "outsider"):
        with pytest.raises(NotFound):
            lab[role].server.mark_failed(theirs, "no")


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
