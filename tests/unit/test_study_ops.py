"""Running studies in demo mode (the SQLite mirror of sql/010_study_ops.sql): pending invitations claimed when
the address signs up, the study quota (also under concurrent uploads), usage per study and the
administrators' overview. tests/sql/test_study_ops_sql.py proves the same on PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lib.auth import Caller, DemoAuth
from lib.errors import AccessDenied, NotFound, QuotaExceeded, ValidationError
from lib.keys import record_keys
from lib.records import NewRecord
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.settings import Settings
from lib.studies import Invite, Member, Role
from lib.usage import admin_study_overview, studies_usage

PASSWORD = "password-1234"
QUOTA = 10**12


def _sign_up(db: Path, email: str) -> tuple[SqliteRepository, SqliteServerRecords]:
    user_id = DemoAuth(db).sign_up(email, PASSWORD).session.user_id
    return SqliteRepository(db, user_id), SqliteServerRecords(db, user_id)


def _new(user_id: str, study: str, size: int) -> NewRecord:
    record_id = str(uuid.uuid4())
    keys = record_keys(user_id, record_id, "mp4", datetime.now(UTC), study)
    return NewRecord(id=record_id, s3_key=keys.original, bucket="demo", original_name="r.mp4",
                     content_type="video/mp4", size_bytes=size, study_id=study)


def _upload(server: SqliteServerRecords, study: str, size: int, study_quota: int = QUOTA) -> str:
    record = server.reserve(_new(server.user_id, study, size), QUOTA, study_quota)
    server.mark_ready(record.id, size_bytes=size, sha256=None, video=None, thumbnail_key=None, preview_key=None)
    return record.id


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "demo.sqlite3"


def test_an_address_with_no_account_is_invited_and_joins_when_it_signs_up(db):
    owner, _ = _sign_up(db, "owner@lab.test")
    study = owner.create_study("Sleep").id
    invited = owner.add_member(study, " New.Student@Lab.test ", Role.VIEWER)
    assert isinstance(invited, Invite) and (invited.email, invited.role) == ("new.student@lab.test", Role.VIEWER)
    assert [(i.email, i.role) for i in owner.invites(study)] == [("new.student@lab.test", Role.VIEWER)]
    assert [m.email for m in owner.members(study)] == ["owner@lab.test"]

    student, _ = _sign_up(db, "new.student@lab.test")
    assert [(s.id, s.role) for s in student.studies()] == [(study, Role.VIEWER)]
    assert owner.invites(study) == []
    assert isinstance(owner.add_member(study, "other@lab.test", Role.MEMBER), Invite)
    _sign_up(db, "someone.else@lab.test")  # another address claims nothing
    assert [i.email for i in owner.invites(study)] == ["other@lab.test"]


def test_an_existing_account_joins_at_once(db):
    owner, _ = _sign_up(db, "owner@lab.test")
    _sign_up(db, "member@lab.test")
    study = owner.create_study("Sleep").id
    added = owner.add_member(study, "member@lab.test", Role.MEMBER)
    assert isinstance(added, Member) and added.role is Role.MEMBER
    assert owner.invites(study) == []


def test_owners_see_and_cancel_invitations_nobody_else_does(db):
    owner, _ = _sign_up(db, "owner@lab.test")
    member, _ = _sign_up(db, "member@lab.test")
    outsider, _ = _sign_up(db, "outsider@lab.test")
    study = owner.create_study("Sleep").id
    owner.add_member(study, "member@lab.test", Role.MEMBER)
    owner.add_member(study, "later@lab.test", Role.MEMBER)
    with pytest.raises(ValidationError, match="invited already"):
        owner.add_member(study, "later@lab.test", Role.OWNER)
    with pytest.raises(AccessDenied):
        member.invites(study)
    with pytest.raises(AccessDenied):
        member.cancel_invite(study, "later@lab.test")
    with pytest.raises(AccessDenied):
        member.add_member(study, "another@lab.test", Role.OWNER)
    with pytest.raises(NotFound):
        outsider.invites(study)
    with pytest.raises(NotFound):
        outsider.cancel_invite(study, "later@lab.test")
    owner.cancel_invite(study, "Later@lab.test")
    with pytest.raises(NotFound, match="does not exist"):
        owner.cancel_invite(study, "later@lab.test")
    later, _ = _sign_up(db, "later@lab.test")
    assert later.studies() == []  # a cancelled invitation is not claimed


def test_a_deleted_study_leaves_no_invitation_behind(db):
    owner, _ = _sign_up(db, "owner@lab.test")
    study = owner.create_study("Sleep").id
    owner.add_member(study, "later@lab.test", Role.MEMBER)
    owner.delete_study(study)
    later, _ = _sign_up(db, "later@lab.test")
    assert later.studies() == []


def test_an_upload_that_would_overfill_the_study_is_refused_in_words(db):
    owner, owner_server = _sign_up(db, "owner@lab.test")
    _, member_server = _sign_up(db, "member@lab.test")
    study = owner.create_study("Sleep").id
    owner.add_member(study, "member@lab.test", Role.MEMBER)
    _upload(owner_server, study, 600, study_quota=1_000)
    with pytest.raises(QuotaExceeded, match=r"does not fit into the study.*600 B of its 1000 B quota"):
        member_server.reserve(_new(member_server.user_id, study, 500), QUOTA, 1_000)
    _upload(member_server, study, 400, study_quota=1_000)  # exactly full fits
    # The personal space is not the study's: its quota does not apply there.
    assert member_server.reserve(_new(member_server.user_id, None, 5_000), QUOTA, 1_000).size_bytes == 5_000


def test_study_quota_race_only_the_reservations_that_fit_win(db):
    """Members uploading into one study at once cannot all pass a check only some fit: eight reservations of 400
    bytes by four members against a study quota of 1000, exactly two succeed."""
    owner, _ = _sign_up(db, "owner@lab.test")
    study = owner.create_study("Sleep").id
    servers = []
    for n in range(4):
        _, server = _sign_up(db, f"m{n}@lab.test")
        owner.add_member(study, f"m{n}@lab.test", Role.MEMBER)
        servers.append(server)
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def reserve(server: SqliteServerRecords) -> None:
        fresh = SqliteServerRecords(db, server.user_id)
        start.wait()
        try:
            fresh.reserve(_new(server.user_id, study, 400), QUOTA, 1_000)
            outcomes.append("reserved")
        except QuotaExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=reserve, args=(servers[n % 4],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 6 + ["reserved"] * 2


def test_usage_per_study_with_the_per_person_breakdown_for_owners(db):
    owner, owner_server = _sign_up(db, "owner@lab.test")
    member, member_server = _sign_up(db, "member@lab.test")
    outsider, outsider_server = _sign_up(db, "outsider@lab.test")
    study = owner.create_study("Sleep").id
    other = outsider.create_study("Other lab").id
    owner.add_member(study, "member@lab.test", Role.MEMBER)
    _upload(owner_server, study, 100)
    _upload(member_server, study, 300)
    _upload(member_server, study, 50)
    _upload(outsider_server, other, 7_000)
    settings = Settings(mode="demo", study_quota_bytes=10_000)

    [mine] = studies_usage(owner, settings)
    assert (mine.study.id, mine.bytes, mine.recordings, mine.quota_bytes) == (study, 450, 3, 10_000)
    assert [(u.email, u.bytes, u.recordings) for u in mine.by_uploader] == [
        ("member@lab.test", 350, 2), ("owner@lab.test", 100, 1)]
    [theirs] = studies_usage(member, settings)
    assert (theirs.bytes, theirs.recordings, theirs.by_uploader) == (450, 3, ())
    assert [(u.study.name, u.bytes) for u in studies_usage(outsider, settings)] == [("Other lab", 7_000)]


def test_only_administrators_see_every_study(db):
    owner, owner_server = _sign_up(db, "owner@lab.test")
    study = owner.create_study("Sleep").id
    owner.add_member(study, "later@lab.test", Role.VIEWER)
    _upload(owner_server, study, 100)
    with pytest.raises(AccessDenied, match="administrators"):
        admin_study_overview(owner, Caller(user_id=owner.user_id, is_admin=False))
    admin_id = DemoAuth(db).ensure_account("admin@lab.test", PASSWORD, role="admin")
    [seen] = admin_study_overview(SqliteRepository(db, admin_id), Caller(user_id=admin_id, is_admin=True))
    assert (seen.name, seen.owner_email, seen.members, seen.bytes, seen.recordings) == (
        "Sleep", "owner@lab.test", 1, 100, 1)
