"""Studies at the database (sql/005_studies.sql): every role × operation as PostgREST runs it, with the
caller's JWT claims under the ``authenticated`` role, on a real PostgreSQL.

Roles: owner, member, viewer, and an outsider (signed in, not a member). A study recording is uploaded by the
member; the owner and the member each have a personal recording too."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import errors, sql

from tests.sql.test_rls_user_files import _expect, _user, acting_as

ROLES = ("owner", "member", "viewer", "outsider")


@dataclass(frozen=True)
class Lab:
    conn: psycopg.Connection
    users: dict[str, str]
    study: str
    study_row: str
    """A study recording uploaded by the member."""
    personal_row: str
    """The owner's personal recording."""


def study_key(study: str, record_id: str, name: str = "original.mp4") -> str:
    return f"studies/{study}/2024/05/{record_id}/{name}"


def personal_key(user: str, record_id: str, name: str = "original.mp4") -> str:
    return f"recordings/{user}/2024/05/{record_id}/{name}"


def insert_row(conn: psycopg.Connection, user: str, study: str | None, key: str | None = None,
               record_id: str | None = None) -> str:
    """A ready row of 10 bytes, written as the database owner (past every grant; the checks still apply)."""
    record_id = record_id or str(uuid.uuid4())
    key = key or (study_key(study, record_id) if study else personal_key(user, record_id))
    conn.execute("insert into public.user_files (id, user_id, study_id, bucket, s3_key, original_name, "
                 "content_type, size_bytes, status) values (%s, %s, %s, 'b', %s, 'x.mp4', 'video/mp4', 10, 'ready')",
                 (record_id, user, study, key))
    return record_id


@pytest.fixture
def lab(pg_clean: str) -> Iterator[Lab]:
    with psycopg.connect(pg_clean, autocommit=True) as conn:
        users = {role: _user(conn, f"{role}@lab.test") for role in ROLES}
        with conn.transaction():
            conn.execute("select set_config('request.jwt.claims', %s, true)",
                         (json.dumps({"sub": users["owner"], "role": "authenticated"}),))
            study = str(conn.execute("select id from public.create_study('Sleep 2024', 'night recordings')")
                        .fetchone()[0])
        for role in ("member", "viewer"):
            conn.execute("insert into public.study_members (study_id, user_id, role) values (%s, %s, %s)",
                         (study, users[role], role))
        study_row = insert_row(conn, users["member"], study)
        personal_row = insert_row(conn, users["owner"], None)
        yield Lab(conn, users, study, study_row, personal_row)


def _count(conn: psycopg.Connection, statement: str, params: tuple = ()) -> int:
    return int(conn.execute(statement, params).fetchone()[0])


def test_create_study_makes_the_caller_its_owner(lab):
    rows = lab.conn.execute("select user_id::text, role from public.study_members where study_id = %s "
                            "order by role", (lab.study,)).fetchall()
    assert dict(rows) == {lab.users["member"]: "member", lab.users["owner"]: "owner",
                          lab.users["viewer"]: "viewer"}
    assert str(lab.conn.execute("select owner from public.studies where id = %s", (lab.study,)).fetchone()[0]) \
        == lab.users["owner"]


@pytest.mark.parametrize(("role", "sees"), [("owner", True), ("member", True), ("viewer", True),
                                            ("outsider", False)])
def test_members_see_the_study_its_members_and_recordings_an_outsider_sees_nothing(lab, role, sees):
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        names = [r[0] for r in lab.conn.execute("select name from public.studies")]
        members = _count(lab.conn, "select count(*) from public.study_members where study_id = %s", (lab.study,))
        listed = _count(lab.conn, "select count(*) from public.study_member_list(%s)", (lab.study,))
        recordings = _count(lab.conn, "select count(*) from public.user_files where study_id = %s", (lab.study,))
    assert names == (["Sleep 2024"] if sees else [])
    assert (members, listed, recordings) == ((3, 3, 1) if sees else (0, 0, 0))


def test_the_member_list_names_members_by_e_mail(lab):
    with acting_as(lab.conn, "authenticated", lab.users["viewer"]):
        rows = lab.conn.execute("select email, role from public.study_member_list(%s)", (lab.study,)).fetchall()
    assert rows == [("owner@lab.test", "owner"), ("member@lab.test", "member"), ("viewer@lab.test", "viewer")]


@pytest.mark.parametrize("role", ["member", "viewer", "outsider"])
def test_a_personal_recording_stays_its_uploaders_alone(lab, role):
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        assert _count(lab.conn, "select count(*) from public.user_files where id = %s", (lab.personal_row,)) == 0
        assert lab.conn.execute("update public.user_files set notes = 'x' where id = %s",
                                (lab.personal_row,)).rowcount == 0


@pytest.mark.parametrize(("role", "edits"), [("owner", True), ("member", True), ("viewer", False),
                                             ("outsider", False)])
def test_members_edit_research_fields_of_any_study_recording_viewers_do_not(lab, role, edits):
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        changed = lab.conn.execute("update public.user_files set subject_id = 'S12' where id = %s",
                                   (lab.study_row,)).rowcount
    assert changed == (1 if edits else 0)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("column", "value"), [("size_bytes", 0), ("status", "failed"), ("study_id", None),
                                               ("user_id", None)])
def test_no_role_changes_a_fact_or_the_space_of_a_study_recording(lab, role, column, value):
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        _expect(lab.conn, errors.InsufficientPrivilege,
                sql.SQL("update public.user_files set {} = %s where id = %s").format(sql.Identifier(column)),
                (value, lab.study_row))


@pytest.mark.parametrize("role", ROLES)
def test_no_token_deletes_or_inserts_a_recording_the_server_does(lab, role):
    """Deleting is the server's, after the objects are gone; it checks uploader-or-owner itself
    (lib/studies.py), and a user's token has no delete grant whatever its role."""
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        _expect(lab.conn, errors.InsufficientPrivilege, "delete from public.user_files where id = %s",
                (lab.study_row,))
        _expect(lab.conn, errors.InsufficientPrivilege,
                "insert into public.user_files (id, user_id, study_id, bucket, s3_key, original_name, content_type) "
                "values (%s, %s, %s, 'b', %s, 'x', 'video/mp4')",
                (rid := str(uuid.uuid4()), lab.users[role], lab.study, study_key(lab.study, rid)))


@pytest.mark.parametrize(("role", "manages"), [("owner", True), ("member", False), ("viewer", False),
                                               ("outsider", False)])
def test_only_owners_add_members(lab, role, manages):
    newcomer = _user(lab.conn, "newcomer@lab.test")
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        if manages:
            lab.conn.execute("select public.add_study_member(%s, 'NewComer@lab.test ', 'viewer')", (lab.study,))
        else:
            _expect(lab.conn, errors.InsufficientPrivilege, "select public.add_study_member(%s, %s, 'owner')",
                    (lab.study, "newcomer@lab.test"))
        # Not even with a direct insert, and not themselves either.
        _expect(lab.conn, errors.InsufficientPrivilege,
                "insert into public.study_members (study_id, user_id, role) values (%s, %s, 'owner')",
                (lab.study, lab.users[role]))
        joined = _count(lab.conn, "select count(*) from public.study_members where user_id = %s", (newcomer,))
    assert joined == (1 if manages else 0)


def test_adding_an_unknown_address_or_a_member_again_is_refused_by_name(lab):
    with acting_as(lab.conn, "authenticated", lab.users["owner"]):
        with pytest.raises(errors.NoDataFound) as unknown, lab.conn.transaction():
            lab.conn.execute("select public.add_study_member(%s, 'nobody@lab.test', 'member')", (lab.study,))
        with pytest.raises(errors.UniqueViolation) as again, lab.conn.transaction():
            lab.conn.execute("select public.add_study_member(%s, 'viewer@lab.test', 'member')", (lab.study,))
        with pytest.raises(errors.CheckViolation), lab.conn.transaction():
            lab.conn.execute("select public.add_study_member(%s, 'outsider@lab.test', 'admin')", (lab.study,))
    assert unknown.value.diag.message_hint == "no_account"
    assert again.value.diag.message_hint == "already_member"


@pytest.mark.parametrize(("role", "manages"), [("owner", True), ("member", False), ("viewer", False),
                                               ("outsider", False)])
def test_only_owners_change_roles_and_remove_others(lab, role, manages):
    other = lab.users["viewer" if role == "member" else "member"]  # leaving is the next test's
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        promoted = lab.conn.execute("update public.study_members set role = 'owner' where study_id = %s "
                                    "and user_id = %s", (lab.study, lab.users["viewer"])).rowcount
        removed = lab.conn.execute("delete from public.study_members where study_id = %s and user_id = %s",
                                   (lab.study, other)).rowcount
    assert (promoted, removed) == ((1, 1) if manages else (0, 0))


@pytest.mark.parametrize(("role", "manages"), [("owner", True), ("member", False), ("viewer", False),
                                               ("outsider", False)])
def test_only_owners_rename_the_study(lab, role, manages):
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        renamed = lab.conn.execute("update public.studies set name = 'Renamed' where id = %s",
                                   (lab.study,)).rowcount
        _expect(lab.conn, errors.InsufficientPrivilege, "update public.studies set owner = %s where id = %s",
                (lab.users[role], lab.study))
    assert renamed == (1 if manages else 0)


def test_a_membership_moves_neither_study_nor_user(lab):
    with acting_as(lab.conn, "authenticated", lab.users["owner"]):
        _expect(lab.conn, errors.InsufficientPrivilege,
                "update public.study_members set user_id = %s where study_id = %s and user_id = %s",
                (lab.users["outsider"], lab.study, lab.users["viewer"]))


def test_a_member_may_leave(lab):
    with acting_as(lab.conn, "authenticated", lab.users["viewer"]):
        left = lab.conn.execute("delete from public.study_members where study_id = %s and user_id = %s",
                                (lab.study, lab.users["viewer"])).rowcount
        assert _count(lab.conn, "select count(*) from public.studies") == 0
    assert left == 1


def test_a_study_always_keeps_an_owner(lab):
    owner = lab.users["owner"]
    with acting_as(lab.conn, "authenticated", owner):
        for statement in ("delete from public.study_members where study_id = %s and user_id = %s",
                          "update public.study_members set role = 'member' where study_id = %s and user_id = %s"):
            with pytest.raises(errors.CheckViolation) as refused, lab.conn.transaction():
                lab.conn.execute(statement, (lab.study, owner))
            assert refused.value.diag.message_hint == "last_owner"
        # With a second owner, the first may step down.
        lab.conn.execute("update public.study_members set role = 'owner' where study_id = %s and user_id = %s",
                         (lab.study, lab.users["member"]))
        assert lab.conn.execute("update public.study_members set role = 'viewer' where study_id = %s "
                                "and user_id = %s", (lab.study, owner)).rowcount == 1


def test_a_removed_member_loses_access_at_once_even_to_their_own_upload(lab):
    member = lab.users["member"]
    with acting_as(lab.conn, "authenticated", lab.users["owner"]):
        lab.conn.execute("delete from public.study_members where study_id = %s and user_id = %s",
                         (lab.study, member))
        with acting_as(lab.conn, "authenticated", member):  # the next request, same transaction
            seen = _count(lab.conn, "select count(*) from public.user_files where id = %s", (lab.study_row,))
            names = _count(lab.conn, "select count(*) from public.studies")
            edited = lab.conn.execute("update public.user_files set notes = 'x' where id = %s",
                                      (lab.study_row,)).rowcount
    assert (seen, names, edited) == (0, 0, 0)


@pytest.mark.parametrize(("role", "deletes"), [("owner", True), ("member", False), ("viewer", False),
                                               ("outsider", False)])
def test_only_owners_delete_a_study_and_only_once_it_is_empty(lab, role, deletes):
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        if deletes:
            _expect(lab.conn, errors.ForeignKeyViolation, "delete from public.studies where id = %s", (lab.study,))
            lab.conn.execute("set local role postgres")
            lab.conn.execute("delete from public.user_files where study_id = %s", (lab.study,))
            lab.conn.execute("set local role authenticated")
        gone = lab.conn.execute("delete from public.studies where id = %s", (lab.study,)).rowcount
        members_left = _count(lab.conn, "select count(*) from public.study_members where study_id = %s",
                              (lab.study,))
    assert gone == (1 if deletes else 0)
    assert members_left == (0 if deletes else (3 if role != "outsider" else 0))


@pytest.mark.parametrize(("role", "uploads"), [("owner", True), ("member", True), ("viewer", False),
                                               ("outsider", False)])
def test_only_members_and_owners_reserve_an_upload_into_a_study(lab, role, uploads):
    """The server's reservation (service role) names the study; the database refuses a non-uploader."""
    record_id = str(uuid.uuid4())
    row = {"id": record_id, "user_id": lab.users[role], "study_id": lab.study, "bucket": "b",
           "s3_key": study_key(lab.study, record_id), "original_name": "x.mp4", "content_type": "video/mp4",
           "size_bytes": 10}
    with acting_as(lab.conn, "service_role"):
        if uploads:
            made = lab.conn.execute("select study_id::text, status from public.reserve_upload(%s, 1000)",
                                    (json.dumps(row),)).fetchone()
            assert made == (lab.study, "pending")
        else:
            with pytest.raises(errors.InsufficientPrivilege) as refused, lab.conn.transaction():
                lab.conn.execute("select public.reserve_upload(%s, 1000)", (json.dumps(row),))
            assert refused.value.diag.message_hint == "not_member"


@pytest.mark.parametrize("key", [
    "recordings/{member}/2024/05/{id}/original.mp4",  # the uploader's personal layout for a study row
    "studies/{other}/2024/05/{id}/original.mp4",  # another study
    "studies/{study}/2024/05/{other}/original.mp4",  # another record
    "studies/{study}/../{other}/2024/05/{id}/original.mp4",
    "studies/{study}/2024/13/{id}/original.mp4",
    "studies/{study}//2024/05/{id}/original.mp4",
])
def test_a_study_rows_keys_lie_in_its_own_study(lab, key):
    record_id = str(uuid.uuid4())
    key = key.format(member=lab.users["member"], other=uuid.uuid4(), study=lab.study, id=record_id)
    with pytest.raises(errors.CheckViolation), lab.conn.transaction():
        insert_row(lab.conn, lab.users["member"], lab.study, key=key, record_id=record_id)


def test_a_personal_row_may_not_hold_a_study_key(lab):
    record_id = str(uuid.uuid4())
    with pytest.raises(errors.CheckViolation), lab.conn.transaction():
        insert_row(lab.conn, lab.users["member"], None, key=study_key(lab.study, record_id), record_id=record_id)


def test_a_recording_never_moves_between_spaces(lab):
    with pytest.raises(errors.InsufficientPrivilege), lab.conn.transaction():
        lab.conn.execute("update public.user_files set study_id = null, s3_key = %s where id = %s",
                         (personal_key(lab.users["member"], lab.study_row), lab.study_row))


def test_is_member_refuses_an_unknown_role_and_pins_its_search_path(lab):
    with acting_as(lab.conn, "authenticated", lab.users["owner"]):
        with pytest.raises(errors.InvalidParameterValue), lab.conn.transaction():
            lab.conn.execute("select public.is_member(%s, 'admin')", (lab.study,))
        assert lab.conn.execute("select public.is_member(%s, 'owner')", (lab.study,)).fetchone()[0] is True
    config = lab.conn.execute("select prosecdef, proconfig from pg_proc where proname = 'is_member'").fetchone()
    assert config == (True, ["search_path=\"\""])


def test_anon_reaches_nothing_of_studies(lab):
    with acting_as(lab.conn, "anon", lab.users["owner"]):
        for statement in ("select * from public.studies", "select * from public.study_members",
                          "select public.create_study('x')"):
            _expect(lab.conn, errors.InsufficientPrivilege, statement)


def test_usage_stays_the_callers_own_in_a_shared_study(lab):
    with acting_as(lab.conn, "authenticated", lab.users["owner"]):
        view = lab.conn.execute("select user_id::text, total_bytes from public.user_files_usage").fetchall()
        summary = lab.conn.execute("select public.usage_summary()").fetchone()[0]
    assert view == [(lab.users["owner"], 10)]
    assert summary["total_count"] == 1
