"""Moving a recording at the database (sql/012_moves.sql), on a real PostgreSQL as PostgREST runs each request:
only the server switches a row's space (no token can, not even an owner's), and only for a mover who owns both
spaces; the keys must lie in the new space; a full study refuses; a direct change of study_id is refused for the
server too; the audit trail takes the new actions; and the migration runs again cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from psycopg import errors

from tests.sql import test_rls_studies
from tests.sql.test_rls_studies import insert_row, personal_key, study_key
from tests.sql.test_rls_user_files import _expect, acting_as

lab = test_rls_studies.lab
"""The owner, member, viewer and outsider of one study, a study recording the member uploaded and the owner's
personal recording (tests/sql/test_rls_studies.py)."""

MIGRATION = Path(__file__).resolve().parents[2] / "sql" / "012_moves.sql"
QUOTA = 10**9
MOVE = ("select study_id::text, s3_key, thumbnail_key from public.move_recording(%s, %s, %s, %s, %s)")


def _second_study(lab, owner: str = "owner") -> str:
    """Another study the owner (or ``owner``) owns, with the member in it as a member."""
    with lab.conn.transaction():
        lab.conn.execute("select set_config('request.jwt.claims', %s, true)",
                         (json.dumps({"sub": lab.users[owner], "role": "authenticated"}),))
        study = str(lab.conn.execute("select id from public.create_study('Exercise')").fetchone()[0])
    lab.conn.execute("insert into public.study_members (study_id, user_id, role) values (%s, %s, 'member') "
                     "on conflict do nothing", (study, lab.users["member"]))
    return study


def _keys(study: str | None, user: str, record: str) -> str:
    key = study_key if study else personal_key
    return json.dumps({"s3_key": key(study or user, record), "thumbnail_key": key(study or user, record, "thumb.jpg")})


def _space(lab, record: str) -> tuple:
    return lab.conn.execute("select study_id::text, s3_key from public.user_files where id = %s", (record,)).fetchone()


def test_the_server_moves_for_an_owner_of_both_studies_keys_and_space_in_one_step(lab):
    second = _second_study(lab)
    with lab.conn.transaction():  # committed: the member reads it afterwards
        lab.conn.execute("set local role service_role")
        moved = lab.conn.execute(MOVE, (lab.study_row, lab.users["owner"], second,
                                        _keys(second, lab.users["member"], lab.study_row), QUOTA)).fetchone()
        assert moved == (second, study_key(second, lab.study_row), study_key(second, lab.study_row, "thumb.jpg"))
    with acting_as(lab.conn, "authenticated", lab.users["member"]):
        assert lab.conn.execute("select count(*) from public.user_files where id = %s and study_id = %s",
                                (lab.study_row, second)).fetchone()[0] == 1


@pytest.mark.parametrize("mover", ["member", "viewer", "outsider"])
def test_a_mover_who_does_not_own_both_spaces_is_refused(lab, mover):
    second = _second_study(lab)
    with acting_as(lab.conn, "service_role"):
        _expect(lab.conn, errors.InsufficientPrivilege, MOVE, (lab.study_row, lab.users[mover], second,
                                                                _keys(second, lab.users["member"], lab.study_row),
                                                                QUOTA))
    assert _space(lab, lab.study_row) == (lab.study, study_key(lab.study, lab.study_row))


def test_an_owner_of_one_study_only_is_refused(lab):
    theirs = _second_study(lab, owner="outsider")
    with acting_as(lab.conn, "service_role"):
        _expect(lab.conn, errors.InsufficientPrivilege, MOVE, (lab.study_row, lab.users["owner"], theirs,
                                                                _keys(theirs, lab.users["member"], lab.study_row),
                                                                QUOTA))


def test_a_personal_space_is_its_uploaders_alone(lab):
    # The study's owner may not move the member's recording into the member's (or their own) personal space.
    with acting_as(lab.conn, "service_role"):
        _expect(lab.conn, errors.InsufficientPrivilege, MOVE, (lab.study_row, lab.users["owner"], None,
                                                                _keys(None, lab.users["member"], lab.study_row),
                                                                QUOTA))
        # The owner moves their own personal recording into the study they own.
        moved = lab.conn.execute(MOVE, (lab.personal_row, lab.users["owner"], lab.study,
                                        _keys(lab.study, lab.users["owner"], lab.personal_row), QUOTA)).fetchone()
        assert moved[0] == lab.study


@pytest.mark.parametrize("role", ["owner", "member"])
def test_no_token_moves_not_even_an_owners(lab, role):
    second = _second_study(lab)
    with acting_as(lab.conn, "authenticated", lab.users[role]):
        _expect(lab.conn, errors.InsufficientPrivilege, MOVE, (lab.study_row, lab.users[role], second,
                                                                _keys(second, lab.users["member"], lab.study_row),
                                                                QUOTA))
        _expect(lab.conn, errors.InsufficientPrivilege, "update public.user_files set study_id = %s where id = %s",
                (second, lab.study_row))


def test_the_server_cannot_change_a_rows_space_but_through_the_move(lab):
    second = _second_study(lab)
    with acting_as(lab.conn, "service_role"):
        _expect(lab.conn, errors.InsufficientPrivilege,
                "update public.user_files set study_id = %s, s3_key = %s where id = %s",
                (second, study_key(second, lab.study_row), lab.study_row))


def test_keys_outside_the_new_space_are_refused(lab):
    second = _second_study(lab)
    with acting_as(lab.conn, "service_role"):
        _expect(lab.conn, errors.CheckViolation, MOVE, (lab.study_row, lab.users["owner"], second,
                                                         _keys(lab.study, lab.users["member"], lab.study_row), QUOTA))


def test_a_full_study_refuses_with_its_figures(lab):
    second = _second_study(lab)
    insert_row(lab.conn, lab.users["owner"], second)  # 10 bytes already there
    with acting_as(lab.conn, "service_role"), pytest.raises(errors.RaiseException) as refused, \
            lab.conn.transaction():
        lab.conn.execute(MOVE, (lab.study_row, lab.users["owner"], second,
                                _keys(second, lab.users["member"], lab.study_row), 15))
    assert refused.value.diag.message_hint == "study_quota_exceeded"
    assert json.loads(refused.value.diag.message_detail)["held_bytes"] == 10


def test_same_space_and_unready_recordings_are_refused(lab):
    with acting_as(lab.conn, "service_role"):
        _expect(lab.conn, errors.InvalidParameterValue, MOVE, (lab.study_row, lab.users["owner"], lab.study,
                                                                _keys(lab.study, lab.users["member"], lab.study_row),
                                                                QUOTA))
    lab.conn.execute("update public.user_files set status = 'pending' where id = %s", (lab.personal_row,))
    with acting_as(lab.conn, "service_role"):
        _expect(lab.conn, errors.ObjectNotInPrerequisiteState, MOVE,
                (lab.personal_row, lab.users["owner"], lab.study, _keys(lab.study, lab.users["owner"],
                                                                        lab.personal_row), QUOTA))


@pytest.mark.parametrize("action", ["move", "study_delete", "consent"])
def test_the_trail_takes_the_new_actions_and_keeps_a_deleted_studys_entries(lab, action):
    with acting_as(lab.conn, "service_role"):
        lab.conn.execute("insert into public.audit_log (actor_id, study_id, action) values (%s, %s, %s)",
                         (lab.users["owner"], lab.study, action))
    lab.conn.execute("insert into public.audit_log (actor_id, study_id, action) values (%s, %s, %s)",
                     (lab.users["owner"], lab.study, action))
    lab.conn.execute("delete from public.user_files where study_id = %s", (lab.study,))
    lab.conn.execute("delete from public.studies where id = %s", (lab.study,))
    assert lab.conn.execute("select count(*) from public.audit_log where study_id = %s",
                            (lab.study,)).fetchone()[0] == 1
    _expect(lab.conn, errors.CheckViolation, "insert into public.audit_log (actor_id, action) values (%s, 'teleport')",
            (lab.users["owner"],))


def test_the_migration_runs_again(lab):
    lab.conn.execute(MIGRATION.read_text())
    lab.conn.execute(MIGRATION.read_text())
    with acting_as(lab.conn, "service_role"):
        _expect(lab.conn, errors.InsufficientPrivilege, "update public.user_files set study_id = null where id = %s",
                (lab.study_row,))
