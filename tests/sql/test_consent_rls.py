"""Consent and tombstones at the database (sql/009_consent.sql), on a real PostgreSQL, as PostgREST runs each
request (the caller's JWT claims under ``authenticated``; the server as ``service_role``): who changes a
recording's consent, that withdrawal is final, who reads tombstones, that nobody changes one, that only the
server erases (a withdrawn row, by someone allowed), and that the migration is idempotent and gives existing rows
the safe default."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from tests.sql import test_rls_studies
from tests.sql.test_rls_studies import _count, insert_row
from tests.sql.test_rls_user_files import _expect, acting_as

lab = test_rls_studies.lab
"""The owner, member, viewer and outsider of one study, a study recording the member uploaded and the owner's
personal recording (tests/sql/test_rls_studies.py)."""

MIGRATION = Path(__file__).resolve().parents[2] / "sql" / "009_consent.sql"
ROLES = ("owner", "member", "viewer", "outsider")


def _consent(conn: psycopg.Connection, record: str) -> tuple[str, object]:
    return conn.execute("select consent, consent_date from public.user_files where id = %s", (record,)).fetchone()


def _withdraw_as_server(conn: psycopg.Connection, record: str) -> None:
    conn.execute("update public.user_files set consent = 'withdrawn', status = 'failed' where id = %s", (record,))


def test_a_recording_starts_internal_with_no_consent_date(lab):
    assert _consent(lab.conn, lab.study_row) == ("internal", None)


@pytest.mark.parametrize("role", ROLES)
def test_no_token_changes_consent_directly_not_even_the_uploaders(lab, role):
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        _expect(lab.conn, errors.InsufficientPrivilege,
                "update public.user_files set consent = 'shareable' where id = %s", (lab.study_row,))
        _expect(lab.conn, errors.InsufficientPrivilege,
                "update public.user_files set consent_date = '2024-05-02' where id = %s", (lab.study_row,))
    assert _consent(lab.conn, lab.study_row) == ("internal", None)


@pytest.mark.parametrize(("role", "outcome"), [("owner", None), ("member", None),
                                               ("viewer", errors.InsufficientPrivilege),
                                               ("outsider", errors.NoDataFound)])
def test_the_uploader_and_a_study_owner_set_consent_through_set_consent(lab, role, outcome):
    statement = "select consent from public.set_consent(%s, 'shareable', '2024-05-02')"
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        if outcome is None:
            assert lab.conn.execute(statement, (lab.study_row,)).fetchone()[0] == "shareable"
            assert str(_consent(lab.conn, lab.study_row)[1]) == "2024-05-02"
        else:
            _expect(lab.conn, outcome, statement, (lab.study_row,))


def test_a_member_who_did_not_upload_it_does_not_set_consent(lab):
    other = lab.conn.execute("insert into auth.users (email) values ('other@lab.test') returning id").fetchone()[0]
    lab.conn.execute("insert into public.study_members (study_id, user_id, role) values (%s, %s, 'member')",
                     (lab.study, other))
    with acting_as(lab.conn, "authenticated", str(other)):
        _expect(lab.conn, errors.InsufficientPrivilege, "select public.set_consent(%s, 'shareable')",
                (lab.study_row,))


def test_a_removed_uploader_no_longer_sets_consent(lab):
    lab.conn.execute("delete from public.study_members where study_id = %s and user_id = %s",
                     (lab.study, lab.users["member"]))
    with acting_as(lab.conn, "authenticated", lab.users["member"]):
        _expect(lab.conn, errors.NoDataFound, "select public.set_consent(%s, 'shareable')", (lab.study_row,))


@pytest.mark.parametrize("role", ["member", "viewer", "outsider"])
def test_a_personal_recordings_consent_is_its_owners_alone(lab, role):
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        _expect(lab.conn, errors.NoDataFound, "select public.set_consent(%s, 'shareable')", (lab.personal_row,))
    with acting_as(lab.conn, "authenticated", lab.users["owner"]):
        lab.conn.execute("select public.set_consent(%s, 'shareable')", (lab.personal_row,))


@pytest.mark.parametrize("state", ["withdrawn", "public", None])
def test_set_consent_sets_internal_or_shareable_only(lab, state):
    with acting_as(lab.conn, "authenticated", lab.users["owner"]):
        _expect(lab.conn, errors.InvalidParameterValue, "select public.set_consent(%s, %s)", (lab.study_row, state))


def test_set_consent_is_not_for_anon(lab):
    with acting_as(lab.conn, "anon"):
        _expect(lab.conn, errors.InsufficientPrivilege, "select public.set_consent(%s, 'shareable')",
                (lab.study_row,))


def test_withdrawal_is_final_for_every_role_the_server_included(lab):
    _withdraw_as_server(lab.conn, lab.study_row)
    with acting_as(lab.conn, "authenticated", lab.users["owner"]):
        _expect(lab.conn, errors.InsufficientPrivilege, "select public.set_consent(%s, 'internal')", (lab.study_row,))
    with acting_as(lab.conn, "service_role"):
        _expect(lab.conn, errors.InsufficientPrivilege,
                "update public.user_files set consent = 'shareable' where id = %s", (lab.study_row,))
    _expect(lab.conn, errors.CheckViolation, "update public.user_files set consent = 'maybe' where id = %s",
            (lab.personal_row,))


# --- erasure and tombstones ----------------------------------------------------------------------------


def _erase(conn: psycopg.Connection, record: str, by: str, reason: str = "withdrawn") -> tuple:
    return conn.execute("select id::text, study_id::text, subject_id, reason, erased_by::text "
                        "from public.erase_recording(%s, %s, %s)", (record, by, reason)).fetchone()


@pytest.mark.parametrize("role", ["authenticated", "anon"])
def test_only_the_server_erases(lab, role):
    _withdraw_as_server(lab.conn, lab.study_row)
    with acting_as(lab.conn, role, lab.users["owner"] if role == "authenticated" else None):
        _expect(lab.conn, errors.InsufficientPrivilege, "select public.erase_recording(%s, %s, 'withdrawn')",
                (lab.study_row, lab.users["owner"]))
        _expect(lab.conn, errors.InsufficientPrivilege,
                "insert into public.recording_tombstones (id, reason, erased_by) values (%s, 'withdrawn', %s)",
                (str(uuid.uuid4()), lab.users["owner"]))


def test_the_server_erases_a_withdrawn_row_and_its_tombstone_holds_no_personal_data(lab):
    lab.conn.execute("update public.user_files set subject_id = 'S12', notes = 'Ada, 34, glasses' where id = %s",
                     (lab.study_row,))
    with acting_as(lab.conn, "service_role"):
        _expect(lab.conn, errors.ObjectNotInPrerequisiteState, "select public.erase_recording(%s, %s, 'withdrawn')",
                (lab.study_row, lab.users["member"]))  # not marked withdrawn first
    _withdraw_as_server(lab.conn, lab.study_row)
    with lab.conn.transaction():
        lab.conn.execute("set local role service_role")
        stone = _erase(lab.conn, lab.study_row, lab.users["member"])
    assert stone == (lab.study_row, lab.study, "S12", "withdrawn", lab.users["member"])
    assert _count(lab.conn, "select count(*) from public.user_files where id = %s", (lab.study_row,)) == 0
    columns = {r[0] for r in lab.conn.execute("select column_name from information_schema.columns "
                                              "where table_name = 'recording_tombstones'")}
    assert columns == {"id", "study_id", "subject_id", "reason", "erased_at", "erased_by"}


@pytest.mark.parametrize(("eraser", "allowed"), [("owner", True), ("member", True), ("viewer", False),
                                                 ("outsider", False)])
def test_the_database_erases_for_the_uploader_or_a_study_owner_only(lab, eraser, allowed):
    _withdraw_as_server(lab.conn, lab.study_row)
    with acting_as(lab.conn, "service_role"):
        if allowed:
            assert _erase(lab.conn, lab.study_row, lab.users[eraser])[4] == lab.users[eraser]
        else:
            _expect(lab.conn, errors.InsufficientPrivilege, "select public.erase_recording(%s, %s, 'withdrawn')",
                    (lab.study_row, lab.users[eraser]))


@pytest.mark.parametrize(("role", "sees_study", "sees_personal"), [
    ("owner", True, True), ("member", False, False), ("viewer", False, False), ("outsider", False, False)])
def test_tombstones_are_read_by_the_study_owner_and_the_personal_spaces_owner(lab, role, sees_study,
                                                                             sees_personal):
    for record in (lab.study_row, lab.personal_row):
        _withdraw_as_server(lab.conn, record)
    with lab.conn.transaction():
        lab.conn.execute("set local role service_role")
        _erase(lab.conn, lab.study_row, lab.users["member"])
        _erase(lab.conn, lab.personal_row, lab.users["owner"], "retention")
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        seen = {r[0] for r in lab.conn.execute("select id::text from public.recording_tombstones")}
    assert (lab.study_row in seen, lab.personal_row in seen) == (sees_study, sees_personal)


@pytest.mark.parametrize("statement", ["update public.recording_tombstones set subject_id = 'x' where id = %s",
                                       "delete from public.recording_tombstones where id = %s"])
@pytest.mark.parametrize("role", ["authenticated", "service_role", None])
def test_nobody_changes_or_removes_a_tombstone(lab, statement, role):
    _withdraw_as_server(lab.conn, lab.study_row)
    with lab.conn.transaction():
        lab.conn.execute("set local role service_role")
        _erase(lab.conn, lab.study_row, lab.users["owner"])
    if role is None:  # the database owner: past every grant, the trigger still refuses
        _expect(lab.conn, errors.InsufficientPrivilege, statement, (lab.study_row,))
        return
    with acting_as(lab.conn, role, lab.users["owner"] if role == "authenticated" else None):
        _expect(lab.conn, errors.InsufficientPrivilege, statement, (lab.study_row,))  # a grant or the trigger
    assert _count(lab.conn, "select count(*) from public.recording_tombstones where id = %s", (lab.study_row,)) == 1


# --- the migration ----------------------------------------------------------------------------------------


def test_the_migration_runs_again_and_keeps_every_rows_consent(lab):
    lab.conn.execute("update public.user_files set consent = 'shareable' where id = %s", (lab.personal_row,))
    with lab.conn.transaction():
        lab.conn.execute(MIGRATION.read_text())
    assert _consent(lab.conn, lab.personal_row)[0] == "shareable"
    assert _consent(lab.conn, lab.study_row) == ("internal", None)


def test_an_install_from_before_consent_migrates_with_every_row_internal(lab):
    with lab.conn.transaction(force_rollback=True):
        lab.conn.execute("alter table public.user_files drop column consent cascade, drop column consent_date")
        row = insert_row(lab.conn, lab.users["owner"], None)
        lab.conn.execute(MIGRATION.read_text())
        assert _consent(lab.conn, row) == ("internal", None)
        assert _consent(lab.conn, lab.study_row) == ("internal", None)
        _withdraw_as_server(lab.conn, row)  # the trigger dropped with the column is back
        _expect(lab.conn, errors.InsufficientPrivilege,
                "update public.user_files set consent = 'internal' where id = %s", (row,))
