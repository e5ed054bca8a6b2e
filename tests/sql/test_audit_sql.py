"""The audit trail at the database (sql/008_audit.sql) on a real PostgreSQL: append-only for every role, the
service role included (grants, and the trigger behind them even for the database's owner); only the server
inserts; row-level security gives a study's owners its entries and a user their personal space's, nobody else
anything. Then the cloud store (lib/repository/supabase_audit.py) through the Supabase stand-in."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors

from lib.audit import Actor, AuditAction, AuditEvent, AuditFilter, AuditTrail
from lib.errors import AuditUnavailable
from lib.repository import SupabaseAuditLog
from lib.studies import Role
from lib.usage import UserRows
from tests.sql.test_rls_user_files import _expect, _user, acting_as
from tests.sql.test_schema_agreement import disagreements, postgres_columns, sqlite_columns
from tests.support.records import supabase_rows

ROLES = ("owner", "member", "viewer", "outsider")
INSERT = ("insert into public.audit_log (actor_id, actor_email, study_id, record_id, subject_id, action, detail, "
          "client_address) values (%s, %s, %s, %s, %s, %s, %s, %s)")


@dataclass(frozen=True)
class Trail:
    conn: psycopg.Connection
    users: dict[str, str]
    study: str


def _write(conn: psycopg.Connection, actor: str, study: str | None, action: str = "view", subject: str = "12") -> None:
    """An entry as the server writes it (the service role)."""
    with conn.transaction():
        conn.execute("set local role service_role")
        conn.execute(INSERT, (actor, "x@lab.test", study, str(uuid.uuid4()), subject, action,
                              json.dumps({"name": "r.mp4"}), "192.0.2.1"))


@pytest.fixture
def trail(pg_clean: str) -> Iterator[Trail]:
    """A study (owner, member, viewer; and an outsider), with a view by the viewer and the owner's personal entry."""
    with psycopg.connect(pg_clean, autocommit=True) as conn:
        users = {role: _user(conn, f"{role}-{uuid.uuid4().hex[:6]}@lab.test") for role in ROLES}
        with conn.transaction():
            conn.execute("select set_config('request.jwt.claims', %s, true)",
                         (json.dumps({"sub": users["owner"], "role": "authenticated"}),))
            study = str(conn.execute("select id from public.create_study('Sleep', '')").fetchone()[0])
        for role in ("member", "viewer"):
            conn.execute("insert into public.study_members (study_id, user_id, role) values (%s, %s, %s)",
                         (study, users[role], role))
        _write(conn, users["viewer"], study)
        _write(conn, users["owner"], None)
        yield Trail(conn, users, study)


def _entries(conn: psycopg.Connection) -> int:
    return int(conn.execute("select count(*) from public.audit_log").fetchone()[0])


@pytest.mark.parametrize("role", ROLES)
def test_no_user_changes_deletes_or_forges_an_entry(trail, role):
    conn, me = trail.conn, trail.users[role]
    before = _entries(conn)
    with acting_as(conn, "authenticated", me):
        for statement in ("update public.audit_log set actor_email = 'nobody'", "delete from public.audit_log",
                          "truncate public.audit_log"):
            _expect(conn, errors.InsufficientPrivilege, statement)
        _expect(conn, errors.InsufficientPrivilege, INSERT,
                (me, "forged", trail.study, None, "12", "view", "{}", "10.0.0.1"))
    assert _entries(conn) == before


def test_the_service_role_appends_but_never_changes_or_deletes(trail):
    conn = trail.conn
    before = _entries(conn)
    with acting_as(conn, "service_role"):
        for statement in ("update public.audit_log set actor_email = 'nobody'", "delete from public.audit_log",
                          "truncate public.audit_log"):
            _expect(conn, errors.InsufficientPrivilege, statement)
        # not even the time: the database stamps it
        _expect(conn, errors.InsufficientPrivilege, "insert into public.audit_log (at, actor_id, action) "
                "values ('2000-01-01', %s, 'view')", (trail.users["owner"],))
    assert _entries(conn) == before


def test_the_trigger_refuses_even_the_tables_owner(trail):
    """The second wall: past every grant (a superuser), an entry still cannot change or go."""
    conn = trail.conn
    for statement in ("update public.audit_log set actor_email = 'nobody'", "delete from public.audit_log",
                      "truncate public.audit_log"):
        with pytest.raises(errors.InsufficientPrivilege, match="append-only"), conn.transaction():
            conn.execute(statement)
    conn.execute("insert into public.audit_log (at, actor_id, action) values ('2000-01-01', %s, 'view')",
                 (trail.users["owner"],))
    newest = conn.execute("select at from public.audit_log order by id desc limit 1").fetchone()[0]
    assert datetime.now(UTC) - newest < timedelta(minutes=5)  # stamped by the database, not back-dated


def test_every_action_the_app_writes_is_accepted_and_nothing_else(trail):
    for action in AuditAction:
        _write(trail.conn, trail.users["owner"], trail.study, action.value)
    with pytest.raises(errors.CheckViolation):
        _write(trail.conn, trail.users["owner"], trail.study, "erase_history")


def test_a_studys_owners_read_its_trail_and_nobody_else(trail):
    conn, study = trail.conn, trail.study
    seen: dict[str, int] = {}
    for role in ROLES:
        with acting_as(conn, "authenticated", trail.users[role]):
            seen[role] = int(conn.execute("select count(*) from public.audit_log where study_id = %s",
                                          (study,)).fetchone()[0])
    assert seen == {"owner": 1, "member": 0, "viewer": 0, "outsider": 0}


def test_a_personal_trail_is_its_users_alone(trail):
    conn = trail.conn
    for role in ROLES:
        with acting_as(conn, "authenticated", trail.users[role]):
            mine = conn.execute("select actor_id::text from public.audit_log where study_id is null").fetchall()
        assert mine == ([(trail.users["owner"],)] if role == "owner" else [])


def test_a_removed_owner_reads_the_trail_no_more(trail):
    conn, study = trail.conn, trail.study
    conn.execute("update public.study_members set role = 'owner' where study_id = %s and user_id = %s",
                 (study, trail.users["member"]))
    conn.execute("delete from public.study_members where study_id = %s and user_id = %s", (study, trail.users["owner"]))
    with acting_as(conn, "authenticated", trail.users["owner"]):
        assert conn.execute("select count(*) from public.audit_log where study_id = %s", (study,)).fetchone()[0] == 0
    with acting_as(conn, "authenticated", trail.users["member"]):
        assert conn.execute("select count(*) from public.audit_log where study_id = %s", (study,)).fetchone()[0] == 1


def test_anon_reads_nothing(trail):
    with acting_as(trail.conn, "anon"):
        _expect(trail.conn, errors.InsufficientPrivilege, "select * from public.audit_log")


def test_the_sqlite_mirror_matches(pg_dsn):
    from lib.repository.sqlite_audit import AUDIT_SQLITE_SCHEMA

    assert disagreements(postgres_columns(pg_dsn, "audit_log"), sqlite_columns(AUDIT_SQLITE_SCHEMA, "audit_log")) == {}


# --- the cloud store, through PostgREST -----------------------------------------------------------------------


def _log(person: UserRows) -> SupabaseAuditLog:
    repo = person.repo
    return SupabaseAuditLog(person.server._client, repo._client, repo.user_id)


def test_the_cloud_store_writes_as_the_server_and_reads_under_rls(supabase_standin):
    people = {name: supabase_rows(supabase_standin, name) for name in ROLES}
    owner = people["owner"].repo
    study = owner.create_study("Sleep", "").id
    owner.add_member(study, "viewer@lab.test", Role.VIEWER)
    record = str(uuid.uuid4())
    viewer = people["viewer"].repo.user_id
    trail = AuditTrail(_log(people["viewer"]), Actor(viewer, "viewer@lab.test", "192.0.2.7"))
    trail.before(AuditEvent(AuditAction.VIEW, study, record, "12", {"name": "r.mp4", "expires_s": 900}))
    trail.before(AuditEvent(AuditAction.DOWNLOAD, study, record, "12", {"name": "r.mp4"}))
    trail.before(AuditEvent(AuditAction.VIEW, study, str(uuid.uuid4()), "13", {"name": "other.mp4"}))
    read = _log(people["owner"]).entries
    seen = read(AuditFilter(study_id=study, subject_id="12", actions=(AuditAction.VIEW,)))
    assert [(e.actor_id, e.record_id, e.client_address, e.detail["expires_s"]) for e in seen] == [
        (viewer, record, "192.0.2.7", 900)]
    assert len(read(AuditFilter(study_id=study, record_id=record))) == 2
    assert len(read(AuditFilter(study_id=study, actor_id=viewer))) == 3
    today = datetime.now(UTC).date()
    assert len(read(AuditFilter(study_id=study, date_from=today, date_to=today))) == 3
    assert read(AuditFilter(study_id=study, date_to=today - timedelta(days=1))) == []
    for other in ("viewer", "outsider"):
        assert _log(people[other]).entries(AuditFilter(study_id=study)) == []


def test_the_cloud_store_refuses_to_write_without_the_service_role(supabase_standin):
    """A user's own token cannot write an entry: the trail refuses the action instead."""
    person = supabase_rows(supabase_standin, "p")
    repo = person.repo
    as_user = SupabaseAuditLog(repo._client.postgrest, repo._client, repo.user_id)
    with pytest.raises(AuditUnavailable):
        AuditTrail(as_user, Actor(repo.user_id, "p@lab.test")).before(AuditEvent(AuditAction.VIEW, None,
                                                                               str(uuid.uuid4())))
    assert _log(person).entries(AuditFilter(study_id=None)) == []



def test_the_cloud_store_writes_an_exports_entries_all_or_none(supabase_standin):
    """One insert of every entry (an export's, one per recording): a row PostgreSQL refuses leaves none written."""
    person = supabase_rows(supabase_standin, "exporter")
    user = person.repo.user_id
    trail = AuditTrail(_log(person), Actor(user, "exporter@lab.test", "192.0.2.8"))
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    trail.before(AuditEvent(AuditAction.EXPORT, None, first, "12", {"files": ["subject12/vid.avi"]}),
                 also=(AuditEvent(AuditAction.EXPORT, None, second, "13", {"files": ["subject13/vid.avi"]}),))
    written = _log(person).entries(AuditFilter(study_id=None, actions=(AuditAction.EXPORT,)))
    assert sorted((e.record_id, e.subject_id) for e in written) == sorted([(first, "12"), (second, "13")])
    # jsonb refuses a NUL character: the second row fails, so the first of this batch is not written either.
    with pytest.raises(AuditUnavailable):
        trail.before(AuditEvent(AuditAction.EXPORT, None, str(uuid.uuid4()), "14", {"files": ["a"]}),
                     also=(AuditEvent(AuditAction.EXPORT, None, str(uuid.uuid4()), "15", {"files": ["b\x00"]}),))
    assert len(_log(person).entries(AuditFilter(study_id=None, actions=(AuditAction.EXPORT,)))) == 2
