"""Moving a recording between spaces (lib/moves.py): the rule (lib.studies.may_move), and the move on demo mode's
SQLite with moto's S3: every object goes to the new space's keys, the row keeps its id and history, each space's
trail has an entry, and every refusal changes nothing (tests/integration/test_moves.py injects failures against a
real S3 server; tests/sql/test_moves_sql.py proves sql/012_moves.sql)."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime

import pytest

from lib.audit import AuditAction, AuditFilter, describe
from lib.errors import AccessDenied, NotFound, QuotaExceeded, ValidationError
from lib.keys import record_keys
from lib.moves import PERSONAL_SPACE, move_record, move_targets
from lib.records import FileRecord, GroundTruthFile, NewRecord, ResearchFields
from lib.repository import SqliteAuditLog
from lib.repository.sqlite import register_functions
from lib.storage import ObjectStore
from lib.studies import Role, may_move, owns_space
from tests.support.audit import refused_trail, trail_of
from tests.support.people import Person, demo_person
from tests.unit.test_studies import QUOTA

FILES = ("original.mp4", "thumb.jpg", "preview.mp4", "ground_truth.csv", "leftover.part")
"""What a stored recording's folder holds here, and a broken upload's leftover its row names nowhere."""


def test_only_someone_who_owns_both_spaces_moves():
    me, other, a, b = "me", "other", str(uuid.uuid4()), str(uuid.uuid4())
    assert owns_space(None, None, uploader_id=me, caller_id=me)
    assert not owns_space(None, None, uploader_id=other, caller_id=me)
    assert owns_space(a, Role.OWNER, uploader_id=other, caller_id=me)
    assert not owns_space(a, Role.MEMBER, uploader_id=me, caller_id=me)
    assert may_move(None, None, a, Role.OWNER, uploader_id=me, caller_id=me)
    assert may_move(a, Role.OWNER, b, Role.OWNER, uploader_id=other, caller_id=me)
    assert may_move(a, Role.OWNER, None, None, uploader_id=me, caller_id=me)
    assert not may_move(a, Role.OWNER, None, None, uploader_id=other, caller_id=me)  # someone else's personal space
    assert not may_move(a, Role.MEMBER, b, Role.OWNER, uploader_id=me, caller_id=me)
    assert not may_move(a, Role.OWNER, b, Role.VIEWER, uploader_id=me, caller_id=me)
    assert not may_move(a, Role.OWNER, a, Role.OWNER, uploader_id=me, caller_id=me)  # nowhere to go


@pytest.fixture
def people(tmp_path) -> dict[str, Person]:
    db = tmp_path / "demo.sqlite3"
    return {name: demo_person(db, f"{name}@lab.test") for name in ("owner", "member")}


def _studies(people: dict[str, Person]) -> tuple[str, str]:
    owner = people["owner"].repo
    first, second = owner.create_study("Sleep").id, owner.create_study("Exercise").id
    for study in (first, second):
        owner.add_member(study, "member@lab.test", Role.MEMBER)
    return first, second


def _stored(store: ObjectStore, person: Person, study: str | None, size: int = 8) -> FileRecord:
    """A ready recording with every kind of object in the bucket."""
    record_id = str(uuid.uuid4())
    keys = record_keys(person.id, record_id, "mp4", datetime.now(UTC), study)
    person.server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=store.bucket, original_name="s12.mp4",
                                    content_type="video/mp4", size_bytes=size, study_id=study,
                                    research=ResearchFields(subject_id="12")), QUOTA)
    for name in FILES:
        store._client.put_object(Bucket=store.bucket, Key=f"{keys.prefix}{name}", Body=b"x" * size)
    person.server.mark_ready(record_id, size_bytes=size, sha256=None, video=None, thumbnail_key=keys.thumbnail,
                             preview_key=keys.preview, analysis={"hr_bpm": 71.0})
    return person.server.set_ground_truth(record_id, GroundTruthFile(f"{keys.prefix}ground_truth.csv", "gt.csv", size))


def _bucket(store: ObjectStore) -> list[str]:
    return sorted(o["Key"] for o in store._client.list_objects_v2(Bucket=store.bucket).get("Contents", []))


def test_a_personal_recording_moves_into_a_study_with_every_object_and_its_history(store, people):
    study, _ = _studies(people)
    owner = people["owner"]
    record = _stored(store, owner, None)
    result = move_record(store, owner.repo, owner.server, record.id, study, trail=trail_of(owner.repo, "o@lab"),
                         study_quota_bytes=QUOTA)
    moved = owner.repo.get(record.id)
    assert (moved.id, moved.study_id, moved.analysis, moved.research) == (record.id, study, record.analysis,
                                                                        record.research)
    assert result.left_behind == () and moved == result.record
    prefix = f"studies/{study}/"
    assert _bucket(store) == sorted(f"{prefix}{record.s3_key.split('/', 2)[2].rsplit('/', 1)[0]}/{n}" for n in FILES)
    assert moved.s3_key.startswith(prefix) and moved.ground_truth_key.startswith(prefix)
    assert moved.thumbnail_key.startswith(prefix) and moved.preview_key.startswith(prefix)
    personal = SqliteAuditLog(owner.repo.db_path, owner.id).entries(AuditFilter(study_id=None))
    in_study = SqliteAuditLog(owner.repo.db_path, owner.id).entries(AuditFilter(study_id=study))
    for entries in (personal, in_study):
        [entry] = [e for e in entries if e.action is AuditAction.MOVE]
        assert (entry.record_id, entry.subject_id, entry.detail["from"], entry.detail["to"]) == (
            record.id, "12", None, study)
        assert describe(entry) == f"from {PERSONAL_SPACE} to Sleep"


def test_an_owner_of_both_studies_moves_a_members_recording_and_members_see_it_in_the_new_one(store, people):
    first, second = _studies(people)
    record = _stored(store, people["member"], first)
    owner = people["owner"]
    assert [s.name for s in move_targets(owner.repo, owner.repo.get(record.id))] == ["Exercise"]
    move_record(store, owner.repo, owner.server, record.id, second, trail=trail_of(owner.repo),
                study_quota_bytes=QUOTA)
    assert people["member"].repo.get(record.id).study_id == second
    assert all(key.startswith(f"studies/{second}/") for key in _bucket(store))
    for study in (first, second):
        moves = SqliteAuditLog(owner.repo.db_path, owner.id).entries(AuditFilter(study_id=study,
                                                                                 actions=(AuditAction.MOVE,)))
        assert [(e.detail["from_name"], e.detail["to_name"]) for e in moves] == [("Sleep", "Exercise")]


def test_a_member_who_is_no_owner_cannot_move_and_nothing_changes(store, people):
    first, second = _studies(people)
    member = people["member"]
    record = _stored(store, member, first)
    before = _bucket(store)
    assert move_targets(member.repo, member.repo.get(record.id)) == []
    for target in (second, None):
        with pytest.raises(AccessDenied, match="owns both"):
            move_record(store, member.repo, member.server, record.id, target, trail=refused_trail(member.id),
                        study_quota_bytes=QUOTA)
    with pytest.raises(AccessDenied, match="owns both"):  # the server's own check, without lib.moves
        member.server.move(record.id, second, {"s3_key": record.s3_key})
    assert _bucket(store) == before and member.repo.get(record.id).study_id == first


def test_a_study_owner_cannot_move_someone_elses_recording_into_a_personal_space(store, people):
    first, second = _studies(people)
    record = _stored(store, people["member"], first)
    owner = people["owner"]
    assert [s.study_id for s in move_targets(owner.repo, owner.repo.get(record.id))] == [second]
    with pytest.raises(AccessDenied):
        move_record(store, owner.repo, owner.server, record.id, None, trail=refused_trail(owner.id),
                    study_quota_bytes=QUOTA)


def test_a_full_study_refuses_before_anything_is_copied(store, people):
    study, _ = _studies(people)
    owner = people["owner"]
    record = _stored(store, owner, None, size=100)
    before = _bucket(store)
    with pytest.raises(QuotaExceeded, match="does not fit into the study"):
        move_record(store, owner.repo, owner.server, record.id, study, trail=refused_trail(owner.id),
                    study_quota_bytes=150)  # 100 bytes and 100 of ground truth
    assert _bucket(store) == before and owner.repo.get(record.id).study_id is None


def test_unknown_or_foreign_targets_and_the_same_space_are_refused_in_words(store, people, tmp_path):
    first, _ = _studies(people)
    owner = people["owner"]
    record = _stored(store, owner, first)
    outsider = demo_person(owner.repo.db_path, "outsider@lab.test")
    with pytest.raises(NotFound):
        move_record(store, owner.repo, owner.server, record.id, outsider.repo.create_study("Theirs").id,
                    trail=refused_trail(owner.id), study_quota_bytes=QUOTA)
    with pytest.raises(ValidationError, match="in that space already"):
        move_record(store, owner.repo, owner.server, record.id, first, trail=refused_trail(owner.id),
                    study_quota_bytes=QUOTA)
    with pytest.raises(NotFound):
        move_record(store, outsider.repo, outsider.server, record.id, None, trail=refused_trail(outsider.id),
                    study_quota_bytes=QUOTA)


def test_a_row_changes_space_only_through_the_move(people):
    study, _ = _studies(people)
    record_id = str(uuid.uuid4())
    owner = people["owner"]
    keys = record_keys(owner.id, record_id, "mp4", datetime.now(UTC))
    owner.server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket="b", original_name="r.mp4",
                                   content_type="video/mp4", size_bytes=1), QUOTA)
    conn = sqlite3.connect(owner.repo.db_path)
    register_functions(conn)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="only with its objects"):
            conn.execute("update user_files set study_id = ? where id = ?", (study, record_id))
    finally:
        conn.close()
