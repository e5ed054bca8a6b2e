"""Running studies at the database (sql/010_study_ops.sql) on a real PostgreSQL, as PostgREST runs each call:
pending invitations and their claim by a confirmed address, the study quota (also under concurrent
reservations), usage per study and the administrators' overview."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import errors

from tests.sql.test_rls_studies import insert_row, study_key
from tests.sql.test_rls_user_files import _expect, _user, acting_as


@dataclass(frozen=True)
class Lab:
    conn: psycopg.Connection
    users: dict[str, str]
    study: str
    other_study: str
    """The outsider's own study."""


def _confirmed(conn: psycopg.Connection, email: str) -> str:
    user = _user(conn, email)
    conn.execute("update auth.users set email_confirmed_at = now() where id = %s", (user,))
    return user


def _create_study(conn: psycopg.Connection, user: str, name: str) -> str:
    with conn.transaction():
        conn.execute("select set_config('request.jwt.claims', %s, true)",
                     (json.dumps({"sub": user, "role": "authenticated"}),))
        return str(conn.execute("select id from public.create_study(%s)", (name,)).fetchone()[0])


@pytest.fixture
def lab(pg_clean: str) -> Iterator[Lab]:
    with psycopg.connect(pg_clean, autocommit=True) as conn:
        users = {role: _confirmed(conn, f"{role}@lab.test") for role in ("owner", "member", "viewer", "outsider")}
        study = _create_study(conn, users["owner"], "Sleep")
        other = _create_study(conn, users["outsider"], "Other lab")
        for role in ("member", "viewer"):
            conn.execute("insert into public.study_members (study_id, user_id, role) values (%s, %s, %s)",
                         (study, users[role], role))
        yield Lab(conn, users, study, other)


def _invite(conn: psycopg.Connection, study: str, email: str, role: str = "member") -> str:
    return conn.execute("select public.invite_study_member(%s, %s, %s)", (study, email, role)).fetchone()[0]


def _role_of(conn: psycopg.Connection, study: str, user: str) -> str | None:
    row = conn.execute("select role from public.study_members where study_id = %s and user_id = %s",
                       (study, user)).fetchone()
    return None if row is None else row[0]


def test_an_address_with_no_account_waits_and_joins_when_its_account_is_confirmed(lab):
    with lab.conn.transaction():  # committed, unlike acting_as
        lab.conn.execute("set local role authenticated")
        _as_claims(lab.conn, lab.users["owner"])
        assert _invite(lab.conn, lab.study, " Student@Lab.test ", "viewer") == "invited"
    student = _user(lab.conn, "student@lab.test")  # signed up, address not confirmed yet
    assert _role_of(lab.conn, lab.study, student) is None
    lab.conn.execute("update auth.users set email_confirmed_at = now() where id = %s", (student,))
    assert _role_of(lab.conn, lab.study, student) == "viewer"
    assert lab.conn.execute("select count(*) from public.study_invites").fetchone()[0] == 0


def test_a_confirmed_account_joins_at_once_an_unconfirmed_one_is_invited(lab):
    unconfirmed = _user(lab.conn, "pending@lab.test")
    newcomer = _confirmed(lab.conn, "newcomer@lab.test")
    with acting_as(lab.conn, "authenticated", lab.users["owner"]):
        assert _invite(lab.conn, lab.study, "NEWCOMER@lab.test", "member") == "joined"
        assert _invite(lab.conn, lab.study, "pending@lab.test", "member") == "invited"
        assert _role_of(lab.conn, lab.study, newcomer) == "member"
        assert _role_of(lab.conn, lab.study, unconfirmed) is None


def test_only_the_confirmed_address_claims_never_user_metadata(lab):
    lab.conn.execute("insert into public.study_invites (study_id, email, role) values (%s, 'boss@lab.test', "
                     "'owner')", (lab.study,))
    sneaky = lab.conn.execute(
        "insert into auth.users (email, email_confirmed_at, raw_user_meta_data) values ('sneaky@evil.test', now(), "
        "%s) returning id", (json.dumps({"email": "boss@lab.test", "email_verified": True}),)).fetchone()[0]
    assert _role_of(lab.conn, lab.study, str(sneaky)) is None
    # Changing the address takes effect only once GoTrue confirms it (it keeps it in email_change until then).
    lab.conn.execute("update auth.users set raw_user_meta_data = %s where id = %s",
                     (json.dumps({"email": "boss@lab.test"}), sneaky))
    assert _role_of(lab.conn, lab.study, str(sneaky)) is None
    assert lab.conn.execute("select count(*) from public.study_invites").fetchone()[0] == 1


@pytest.mark.parametrize("role", ["member", "viewer", "outsider"])
def test_only_owners_invite_see_and_cancel_invitations(lab, role):
    lab.conn.execute("insert into public.study_invites (study_id, email, role) values (%s, 'later@lab.test', "
                     "'member')", (lab.study,))
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        _expect(lab.conn, errors.InsufficientPrivilege, "select public.invite_study_member(%s, %s, 'owner')",
                (lab.study, "friend@evil.test"))
        assert lab.conn.execute("select count(*) from public.study_invites").fetchone()[0] == 0
        assert lab.conn.execute("delete from public.study_invites where study_id = %s", (lab.study,)).rowcount == 0
        _expect(lab.conn, errors.InsufficientPrivilege,
                "insert into public.study_invites (study_id, email, role) values (%s, 'friend@evil.test', 'owner')",
                (lab.study,))
        _expect(lab.conn, errors.InsufficientPrivilege,
                "update public.study_invites set email = 'friend@evil.test' where study_id = %s", (lab.study,))
    with acting_as(lab.conn, "authenticated", lab.users["owner"]):
        assert lab.conn.execute("select email from public.study_invites").fetchall() == [("later@lab.test",)]
        assert lab.conn.execute("delete from public.study_invites where study_id = %s", (lab.study,)).rowcount == 1


def test_inviting_twice_or_a_member_again_is_refused_by_name(lab):
    with acting_as(lab.conn, "authenticated", lab.users["owner"]):
        _invite(lab.conn, lab.study, "later@lab.test")
        with pytest.raises(errors.UniqueViolation) as twice, lab.conn.transaction():
            _invite(lab.conn, lab.study, "LATER@lab.test", "owner")
        with pytest.raises(errors.UniqueViolation) as member, lab.conn.transaction():
            _invite(lab.conn, lab.study, "viewer@lab.test")
        with pytest.raises(errors.CheckViolation), lab.conn.transaction():
            _invite(lab.conn, lab.study, "someone@lab.test", "admin")
    assert twice.value.diag.message_hint == "already_invited"
    assert member.value.diag.message_hint == "already_member"


def _reserve(conn: psycopg.Connection, user: str, study: str | None, size: int, study_quota: int,
             quota: int = 10**12) -> str:
    record_id = str(uuid.uuid4())
    key = study_key(study, record_id) if study else f"recordings/{user}/2024/05/{record_id}/original.mp4"
    row = {"id": record_id, "user_id": user, "study_id": study, "bucket": "b", "s3_key": key,
           "original_name": "x.mp4", "content_type": "video/mp4", "size_bytes": size}
    conn.execute("select public.reserve_upload_in_space(%s::jsonb, %s, %s)", (json.dumps(row), quota, study_quota))
    return record_id


def test_the_study_quota_counts_every_members_ready_and_pending_bytes(lab):
    insert_row(lab.conn, lab.users["owner"], lab.study)  # 10 ready bytes
    with acting_as(lab.conn, "service_role"):
        _reserve(lab.conn, lab.users["member"], lab.study, 80, study_quota=100)
        with pytest.raises(errors.RaiseException) as refused, lab.conn.transaction():
            _reserve(lab.conn, lab.users["owner"], lab.study, 11, study_quota=100)
        assert refused.value.diag.message_hint == "study_quota_exceeded"
        assert json.loads(refused.value.diag.message_detail) == {
            "held_bytes": 90, "pending_bytes": 80, "quota_bytes": 100}
        _reserve(lab.conn, lab.users["owner"], lab.study, 10, study_quota=100)  # exactly full
        _reserve(lab.conn, lab.users["owner"], None, 500, study_quota=100)  # a personal upload is not the study's
        with pytest.raises(errors.RaiseException) as personal, lab.conn.transaction():  # the personal quota holds
            _reserve(lab.conn, lab.users["member"], lab.study, 0, study_quota=100, quota=10)
        assert personal.value.diag.message_hint == "quota_exceeded"


def test_no_user_token_reserves_in_a_study(lab):
    for role in ("authenticated", "anon"):
        with acting_as(lab.conn, role, lab.users["owner"]):
            _expect(lab.conn, errors.InsufficientPrivilege,
                    "select public.reserve_upload_in_space('{}'::jsonb, 1, 1)")


def test_study_quota_race_members_reserving_at_once_only_one_fits(lab, pg_clean):
    """Two members of one study reserve at once: the first holds the study's lock until it commits, the second
    waits, then sees its row and is refused. Their personal locks differ, so only the study's serialises them."""
    first = psycopg.connect(pg_clean)
    second = psycopg.connect(pg_clean, autocommit=True)
    try:
        first.execute("set role service_role")
        second.execute("set role service_role")
        _reserve(first, lab.users["owner"], lab.study, 600, study_quota=1_000)  # open transaction
        outcome: list[object] = []

        def race() -> None:
            try:
                outcome.append(_reserve(second, lab.users["member"], lab.study, 600, study_quota=1_000))
            except psycopg.Error as exc:
                outcome.append(exc)

        thread = threading.Thread(target=race)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive() and not outcome  # waiting for the study's lock
        first.commit()
        thread.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], errors.RaiseException)
        assert outcome[0].diag.message_hint == "study_quota_exceeded"
    finally:
        first.close()
        second.close()
    held = lab.conn.execute("select sum(size_bytes) from public.user_files where study_id = %s",
                            (lab.study,)).fetchone()[0]
    assert held == 600


@pytest.mark.parametrize(("role", "counted"), [("owner", True), ("member", True), ("viewer", True),
                                               ("outsider", False)])
def test_usage_per_study_counts_only_the_callers_studies(lab, role, counted):
    insert_row(lab.conn, lab.users["member"], lab.study)
    insert_row(lab.conn, lab.users["member"], lab.study)
    insert_row(lab.conn, lab.users["owner"], lab.study)
    insert_row(lab.conn, lab.users["outsider"], lab.other_study)
    insert_row(lab.conn, lab.users["owner"], None)  # personal: no study's
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        rows = {(str(s), str(u)): (b, n) for s, u, b, n in
                lab.conn.execute("select study_id, user_id, bytes, recordings from public.study_usage()")}
    expected = {(lab.study, lab.users["member"]): (20, 2), (lab.study, lab.users["owner"]): (10, 1)}
    assert rows == (expected if counted else {(lab.other_study, lab.users["outsider"]): (10, 1)})


def _as_claims(conn: psycopg.Connection, user: str, app_role: str | None = None, user_role: str | None = None) -> None:
    """The caller's JWT claims for this transaction, with app_metadata and user_metadata as GoTrue issues them."""
    claims = {"sub": user, "role": "authenticated", "app_metadata": {} if app_role is None else {"role": app_role},
              "user_metadata": {} if user_role is None else {"role": user_role}}
    conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))


@pytest.mark.parametrize(("app_role", "user_role", "allowed"), [
    ("admin", None, True), (None, "admin", False), ("researcher", None, False), (None, None, False)])
def test_only_an_administrators_token_sees_every_study(lab, app_role, user_role, allowed):
    insert_row(lab.conn, lab.users["member"], lab.study)
    with acting_as(lab.conn, "authenticated", lab.users["viewer"]):
        _as_claims(lab.conn, lab.users["viewer"], app_role, user_role)
        if not allowed:
            _expect(lab.conn, errors.InsufficientPrivilege, "select * from public.admin_study_overview()")
            return
        rows = lab.conn.execute("select name, owner_email, members, bytes, recordings "
                                "from public.admin_study_overview()").fetchall()
    assert rows == [("Other lab", "outsider@lab.test", 1, 0, 0), ("Sleep", "owner@lab.test", 3, 10, 1)]


def test_a_member_of_one_study_reaches_no_row_of_another(lab):
    """The member of Sleep against the outsider's "Other lab": every table and function, and the keys."""
    other_row = insert_row(lab.conn, lab.users["outsider"], lab.other_study)
    lab.conn.execute("insert into public.study_invites (study_id, email, role) values (%s, 'x@lab.test', 'owner')",
                     (lab.other_study,))
    with acting_as(lab.conn, "authenticated", lab.users["member"]):
        counts = [lab.conn.execute(statement, (lab.other_study,)).fetchone()[0] for statement in (
            "select count(*) from public.studies where id = %s",
            "select count(*) from public.study_members where study_id = %s",
            "select count(*) from public.study_invites where study_id = %s",
            "select count(*) from public.user_files where study_id = %s",
            "select count(*) from public.study_member_list(%s)",
            "select count(*) from public.study_usage() where study_id = %s")]
        changed = [lab.conn.execute(statement, (lab.other_study,)).rowcount for statement in (
            "update public.user_files set notes = 'x' where study_id = %s",
            "update public.studies set name = 'mine' where id = %s",
            "update public.study_members set role = 'owner' where study_id = %s",
            "delete from public.study_members where study_id = %s",
            "delete from public.study_invites where study_id = %s",
            "delete from public.studies where id = %s")]
        _expect(lab.conn, errors.InsufficientPrivilege, "select public.invite_study_member(%s, %s, 'owner')",
                (lab.other_study, "member@lab.test"))
    assert counts == [0] * 6 and changed == [0] * 6
    # The server's writes: a row of Sleep may not carry Other lab's keys, nor move there, nor be made there.
    with pytest.raises(errors.CheckViolation), lab.conn.transaction():
        rid = str(uuid.uuid4())
        insert_row(lab.conn, lab.users["member"], lab.study, key=study_key(lab.other_study, rid), record_id=rid)
    mine = insert_row(lab.conn, lab.users["member"], lab.study)
    with pytest.raises(errors.InsufficientPrivilege), lab.conn.transaction():
        lab.conn.execute("update public.user_files set study_id = %s where id = %s", (lab.other_study, mine))
    with pytest.raises(errors.InsufficientPrivilege), lab.conn.transaction():
        insert_row(lab.conn, lab.users["member"], lab.other_study)
    assert lab.conn.execute("select study_id::text from public.user_files where id = %s",
                            (other_row,)).fetchone()[0] == lab.other_study
