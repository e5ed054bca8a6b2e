"""Row-level security and grants of sql/ on a real PostgreSQL, as Supabase's API roles."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import errors, sql

from tests.support.postgres import apply_schema


def _user(conn: psycopg.Connection, email: str) -> str:
    row = conn.execute("insert into auth.users (email) values (%s) returning id", (email,)).fetchone()
    return str(row[0])


def _key(user_id: str, name: str = "original.mp4") -> str:
    return f"recordings/{user_id}/2024/05/{uuid.uuid4()}/{name}"


def _row(conn: psycopg.Connection, user_id: str, size: int = 100, status: str = "ready",
         **extra: object) -> str:
    values = {"user_id": user_id, "bucket": "b", "s3_key": _key(user_id), "original_name": "x.mp4",
              "content_type": "video/mp4", "size_bytes": size, "status": status, **extra}
    statement = sql.SQL("insert into public.user_files ({}) values ({}) returning id").format(
        sql.SQL(", ").join(map(sql.Identifier, values)), sql.SQL(", ").join(sql.Placeholder() * len(values)))
    return str(conn.execute(statement, list(values.values())).fetchone()[0])


@pytest.fixture
def db(pg_clean: str) -> Iterator[tuple[psycopg.Connection, str, str]]:
    """(superuser connection, user A, user B): A has ready rows of 100 and 50 bytes, B one of 7000."""
    with psycopg.connect(pg_clean, autocommit=True) as conn:
        a, b = _user(conn, "a@lab.test"), _user(conn, "b@lab.test")
        _row(conn, a, 100, lossless=True, subject_id="S1")
        _row(conn, a, 50, content_type="video/x-msvideo")
        _row(conn, b, 7_000)
        yield conn, a, b


@contextmanager
def acting_as(conn: psycopg.Connection, role: str,
              user_id: str | None = None) -> Iterator[psycopg.Connection]:
    """One transaction as PostgREST runs it: the API role plus the caller's claims; rolled back."""
    tx = conn.transaction(force_rollback=True)
    with tx:
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        if user_id is not None:
            claims = {"sub": user_id, "role": role, "aud": "authenticated"}
            conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        yield conn


def _expect(conn: psycopg.Connection, error: type[Exception], statement: str, params: tuple = ()) -> None:
    with pytest.raises(error), conn.transaction():
        conn.execute(statement, params)


def test_a_sees_only_own_rows(db):
    conn, a, b = db
    with acting_as(conn, "authenticated", a):
        owners = {str(r[0]) for r in conn.execute("select user_id from public.user_files")}
        count = conn.execute("select count(*) from public.user_files where user_id = %s", (b,)).fetchone()[0]
    assert owners == {a}
    assert count == 0


def test_a_cannot_insert_for_b(db):
    conn, a, b = db
    with acting_as(conn, "authenticated", a):
        _expect(conn, errors.InsufficientPrivilege,
                "insert into public.user_files (user_id, bucket, s3_key, original_name, content_type) "
                "values (%s, 'b', %s, 'x', 'video/mp4')", (b, _key(b)))


def test_insert_defaults_to_the_caller(db):
    conn, a, _ = db
    with acting_as(conn, "authenticated", a):
        owner = conn.execute(
            "insert into public.user_files (bucket, s3_key, original_name, content_type) "
            "values ('b', %s, 'x', 'video/mp4') returning user_id", (_key(a),)).fetchone()[0]
    assert str(owner) == a


def test_update_and_delete_of_b_rows_affect_nothing(db):
    conn, a, b = db
    with acting_as(conn, "authenticated", a):
        updated = conn.execute("update public.user_files set notes = 'x' where user_id = %s", (b,)).rowcount
        deleted = conn.execute("delete from public.user_files where user_id = %s", (b,)).rowcount
    assert (updated, deleted) == (0, 0)
    assert conn.execute("select count(*) from public.user_files where user_id = %s", (b,)).fetchone()[0] == 1


def test_a_cannot_move_a_row_to_b(db):
    conn, a, b = db
    with acting_as(conn, "authenticated", a):
        row_id = conn.execute("select id from public.user_files limit 1").fetchone()[0]
        # Even with a key that satisfies B's prefix, the row may not change hands.
        _expect(conn, errors.InsufficientPrivilege,
                "update public.user_files set user_id = %s, s3_key = %s where id = %s", (b, _key(b), row_id))


def test_keys_outside_own_prefix_are_rejected(db):
    conn, a, b = db
    with acting_as(conn, "authenticated", a):
        for key in (_key(b), "recordings/x.mp4", f"elsewhere/{a}/x.mp4", f"recordings/{a}x/y.mp4"):
            _expect(conn, errors.CheckViolation,
                    "insert into public.user_files (bucket, s3_key, original_name, content_type) "
                    "values ('b', %s, 'x', 'video/mp4')", (key,))
        row_id = conn.execute("select id from public.user_files limit 1").fetchone()[0]
        _expect(conn, errors.CheckViolation, "update public.user_files set s3_key = %s where id = %s",
                (_key(b), row_id))
        _expect(conn, errors.CheckViolation, "update public.user_files set thumbnail_key = %s where id = %s",
                (_key(b, "thumb.jpg"), row_id))


def test_anon_sees_nothing(db):
    conn, a, _ = db
    with acting_as(conn, "anon", a):
        _expect(conn, errors.InsufficientPrivilege, "select * from public.user_files")
        _expect(conn, errors.InsufficientPrivilege, "select public.usage_summary()")
        _expect(conn, errors.InsufficientPrivilege, "select * from public.user_files_usage")


def test_authenticated_without_claims_sees_nothing(db):
    conn, _, _ = db
    with acting_as(conn, "authenticated"):
        assert conn.execute("select auth.uid()").fetchone()[0] is None
        assert conn.execute("select count(*) from public.user_files").fetchone()[0] == 0
        conn.execute("select set_config('request.jwt.claims', '', true)")
        assert conn.execute("select auth.uid()").fetchone()[0] is None


def test_usage_of_a_never_includes_b(db):
    conn, a, _ = db
    _row(conn, a, 1_000, status="pending")  # pending rows are not stored bytes yet
    with acting_as(conn, "authenticated", a):
        summary = conn.execute("select public.usage_summary()").fetchone()[0]
        view = conn.execute("select user_id, total_bytes, total_count from public.user_files_usage")
        view = view.fetchall()
    assert summary["total_bytes"] == 150
    assert summary["total_count"] == 2
    assert {b["label"]: b["bytes"] for b in summary["by_content_type"]} == {"video/mp4": 100,
                                                                            "video/x-msvideo": 50}
    assert {b["label"]: b["bytes"] for b in summary["by_lossless"]} == {"lossless": 100, "unknown": 50}
    assert {b["label"]: b["count"] for b in summary["by_subject"]} == {"S1": 1, "(none)": 1}
    assert sum(m["bytes"] for m in summary["by_month"]) == 150
    assert [(str(u), n, c) for u, n, c in view] == [(a, 150, 2)]


def test_admin_views_are_not_reachable_by_users(db):
    conn, a, b = db
    with acting_as(conn, "authenticated", a):
        _expect(conn, errors.InsufficientPrivilege, "select * from public.admin_usage_by_user")
        _expect(conn, errors.InsufficientPrivilege, "select * from public.admin_usage_by_month")
    with acting_as(conn, "service_role"):
        rows = conn.execute("select user_id::text, total_bytes from public.admin_usage_by_user").fetchall()
    assert dict(rows) == {a: 150, b: 7_000}


def test_update_trigger_keeps_identity_and_stamps_updated_at(db):
    conn, a, _ = db
    row_id = _row(conn, a)
    before = conn.execute("select created_at, updated_at from public.user_files where id = %s",
                          (row_id,)).fetchone()
    with acting_as(conn, "authenticated", a):
        after = conn.execute(
            "update public.user_files set notes = 'n', created_at = '2000-01-01' where id = %s "
            "returning created_at, updated_at", (row_id,)).fetchone()
    assert after[0] == before[0]
    assert after[1] > before[1]


def test_no_truncate_or_privilege_escalation_for_users(db):
    conn, a, _ = db
    with acting_as(conn, "authenticated", a):
        _expect(conn, errors.InsufficientPrivilege, "truncate public.user_files")
        _expect(conn, errors.InsufficientPrivilege, "select * from auth.users")


def test_schema_files_are_idempotent(db, pg_clean):
    conn, a, _ = db
    apply_schema(pg_clean)
    assert conn.execute("select count(*) from public.user_files where user_id = %s", (a,)).fetchone()[0] == 2
