"""Row-level security and grants of sql/ on a real PostgreSQL, as Supabase's API roles.

Issue 14 at the database: a user's token reads its own rows and changes only their research
fields; facts, keys and the row lifecycle are the service role's; keys follow the app's layout
exactly; the quota reservation holds under concurrent callers."""

from __future__ import annotations

import json
import threading
import time
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


def _key(user_id: str, record_id: str, name: str = "original.mp4") -> str:
    return f"recordings/{user_id}/2024/05/{record_id}/{name}"


def _row(conn: psycopg.Connection, user_id: str, size: int = 100, status: str = "ready",
         **extra: object) -> str:
    record_id = str(uuid.uuid4())
    values = {"id": record_id, "user_id": user_id, "bucket": "b", "s3_key": _key(user_id, record_id),
              "original_name": "x.mp4", "content_type": "video/mp4", "size_bytes": size, "status": status,
              **extra}
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


def test_users_insert_and_delete_nothing_not_even_their_own(db):
    """Rows are created by the server's quota reservation and deleted by the server after their objects:
    a user deleting a row directly would hide its bytes from the quota."""
    conn, a, b = db
    record_id = str(uuid.uuid4())
    with acting_as(conn, "authenticated", a):
        for owner in (a, b):
            _expect(conn, errors.InsufficientPrivilege,
                    "insert into public.user_files (id, user_id, bucket, s3_key, original_name, content_type) "
                    "values (%s, %s, 'b', %s, 'x', 'video/mp4')", (record_id, owner, _key(owner, record_id)))
        _expect(conn, errors.InsufficientPrivilege, "delete from public.user_files where user_id = %s", (a,))
    assert conn.execute("select count(*) from public.user_files where user_id = %s", (a,)).fetchone()[0] == 2


@pytest.mark.parametrize(("column", "value"), [
    ("size_bytes", 0), ("content_type", "text/html"), ("status", "ready"), ("error", None), ("sha256", "00"),
    ("s3_key", "recordings/{a}/2024/05/{id}/original.html"), ("preview_key", None), ("thumbnail_key", None),
    ("original_name", "![x](https://evil.example/x.png)"), ("analysis", '{"hr_bpm": 60}'), ("fps", 1000),
    ("lossless", True), ("bucket", "elsewhere"), ("created_at", "2000-01-01"), ("id", str(uuid.uuid4())),
])
def test_a_users_token_cannot_change_a_fact_of_its_own_row(db, column, value):
    """Issue 14, attacks 1 and 2 at the database: every fact column is refused to the user's own token."""
    conn, a, _ = db
    row_id = _row(conn, a, preview_key=None)
    if column == "s3_key":
        value = str(value).format(a=a, id=row_id)
    with acting_as(conn, "authenticated", a):
        _expect(conn, errors.InsufficientPrivilege,
                sql.SQL("update public.user_files set {} = %s where id = %s").format(sql.Identifier(column)),
                (value, row_id))


def test_a_users_token_changes_its_research_fields(db):
    conn, a, _ = db
    row_id = _row(conn, a)
    with acting_as(conn, "authenticated", a):
        row = conn.execute("update public.user_files set subject_id = 'S9', session_label = 'rest', "
                           "notes = 'n', tags = '{a,b}' where id = %s returning subject_id, tags, size_bytes",
                           (row_id,)).fetchone()
    assert row == ("S9", ["a", "b"], 100)


def test_research_edits_of_b_rows_affect_nothing(db):
    conn, a, b = db
    with acting_as(conn, "authenticated", a):
        updated = conn.execute("update public.user_files set notes = 'x' where user_id = %s", (b,)).rowcount
    assert updated == 0
    assert conn.execute("select count(*) from public.user_files where user_id = %s", (b,)).fetchone()[0] == 1


def test_a_cannot_move_a_row_to_b(db):
    conn, a, b = db
    with acting_as(conn, "authenticated", a):
        row_id = conn.execute("select id from public.user_files limit 1").fetchone()[0]
        # Even with a key that satisfies B's prefix, the row may not change hands.
        _expect(conn, errors.InsufficientPrivilege,
                "update public.user_files set user_id = %s, s3_key = %s where id = %s",
                (b, _key(b, row_id), row_id))
    with acting_as(conn, "service_role"):  # not even the server moves a row
        _expect(conn, errors.InsufficientPrivilege,
                "update public.user_files set user_id = %s, s3_key = %s where id = %s",
                (b, _key(b, row_id), row_id))


@pytest.mark.parametrize("key", [
    "recordings/{b}/2024/05/{id}/original.mp4",
    "recordings/{a}/../{b}/2024/05/{id}/original.mp4",
    "recordings/{a}/2024/05/../../../{b}/2024/05/{id}/original.mp4",
    "recordings/{a}//2024/05/{id}/original.mp4",
    "recordings/{a}/2024/05/{id}//original.mp4",
    "recordings/{a}/2024/05/{other}/original.mp4",
    "recordings/{a}/2024/05/{id}/original.mp4/../../x",
    "recordings/{a}/2024/13/{id}/original.mp4",
    "recordings/{a}/2024/05/{id}/original.MP4",
    "recordings/{a}/2024/05/{id}/thumb.jpg",
    "recordings/x.mp4", "elsewhere/{a}/2024/05/{id}/original.mp4", "/recordings/{a}/2024/05/{id}/original.mp4",
])
def test_the_database_refuses_keys_the_app_cannot_produce(db, key):
    """Issue 14, attack 8: the check matches exactly what lib/keys.py makes; a prefix check let
    recordings/<B>/../<A>/... through. Refused even for the service role (the server)."""
    conn, a, b = db
    record_id = str(uuid.uuid4())
    key = key.format(a=a, b=b, id=record_id, other=uuid.uuid4())
    with acting_as(conn, "service_role"):
        _expect(conn, errors.CheckViolation,
                "insert into public.user_files (id, user_id, bucket, s3_key, original_name, content_type) "
                "values (%s, %s, 'b', %s, 'x', 'video/mp4')", (record_id, a, key))
        row_id = _row(conn, a)
        for column in ("s3_key", "thumbnail_key", "preview_key", "ground_truth_key"):
            if column == "thumbnail_key" and key.endswith(f"{record_id}/thumb.jpg"):
                continue  # that one is the thumbnail's own key
            _expect(conn, errors.CheckViolation,
                    sql.SQL("update public.user_files set {} = %s where id = %s").format(sql.Identifier(column)),
                    (key.replace(record_id, row_id), row_id))


def test_each_key_column_holds_its_own_file_of_its_own_record(db):
    conn, a, _ = db
    with acting_as(conn, "service_role"):
        row_id = _row(conn, a)
        for column, name in (("thumbnail_key", "thumb.jpg"), ("preview_key", "preview.mp4"),
                             ("ground_truth_key", "ground_truth.csv"), ("ground_truth_key", "ground_truth.txt")):
            conn.execute(sql.SQL("update public.user_files set {} = %s where id = %s").format(
                sql.Identifier(column)), (_key(a, row_id, name), row_id))
        _expect(conn, errors.CheckViolation, "update public.user_files set preview_key = %s where id = %s",
                (_key(a, row_id, "thumb.jpg"), row_id))


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
    with acting_as(conn, "service_role"):
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


# --- the quota reservation -----------------------------------------------------------------------------


def _reserve(conn: psycopg.Connection, user_id: str, size: int, quota: int) -> str:
    record_id = str(uuid.uuid4())
    row = {"id": record_id, "user_id": user_id, "bucket": "b", "s3_key": _key(user_id, record_id),
           "original_name": "x.mp4", "content_type": "video/mp4", "size_bytes": size, "status": "ready"}
    reserved = conn.execute("select (public.reserve_upload(%s::jsonb, %s)).status",
                            (json.dumps(row), quota)).fetchone()[0]
    assert reserved == "pending"  # whatever the caller asks for
    return record_id


def test_only_the_service_role_may_reserve(db):
    conn, a, _ = db
    for role in ("authenticated", "anon"):
        with acting_as(conn, role, a):
            _expect(conn, errors.InsufficientPrivilege, "select public.reserve_upload('{}'::jsonb, 1)")


def test_ready_and_pending_rows_count_against_the_quota_failed_ones_do_not(db):
    """A holds 150 ready bytes. Pending reservations count with their declared size (an unfinished upload
    holds bytes); a failed row's objects are gone, so it counts nothing."""
    conn, a, _ = db
    _row(conn, a, 10_000, status="failed")
    with acting_as(conn, "service_role"):
        _reserve(conn, a, 800, quota=1_000)
        with pytest.raises(errors.RaiseException) as refused, conn.transaction():
            _reserve(conn, a, 51, quota=1_000)
        assert refused.value.diag.message_hint == "quota_exceeded"
        assert json.loads(refused.value.diag.message_detail) == {
            "held_bytes": 950, "pending_bytes": 800, "quota_bytes": 1_000}
        _reserve(conn, a, 50, quota=1_000)  # exactly full


def test_quota_race_two_concurrent_reservations_only_one_fits(db, pg_clean):
    """Issue 14, attack 5 at the database: the first reservation holds the user's lock until it commits;
    the second waits for it, then sees its row and is refused. Without the lock both would pass."""
    conn, a, _ = db
    first = psycopg.connect(pg_clean)
    second = psycopg.connect(pg_clean, autocommit=True)
    try:
        first.execute("set role service_role")
        second.execute("set role service_role")
        _reserve(first, a, 600, quota=1_000)  # in an open transaction: not committed yet
        outcome: list[object] = []

        def race() -> None:
            try:
                outcome.append(_reserve(second, a, 600, quota=1_000))
            except psycopg.Error as exc:
                outcome.append(exc)

        thread = threading.Thread(target=race)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive() and not outcome  # waiting for the first reservation's lock
        first.commit()
        thread.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], errors.RaiseException)
        assert outcome[0].diag.message_hint == "quota_exceeded"
    finally:
        first.close()
        second.close()
    sizes = conn.execute("select size_bytes from public.user_files where user_id = %s and status = 'pending'",
                         (a,)).fetchall()
    assert sizes == [(600,)]


def test_other_users_do_not_wait_for_each_other(db, pg_clean):
    conn, a, b = db
    first = psycopg.connect(pg_clean)
    try:
        first.execute("set role service_role")
        _reserve(first, a, 10, quota=1_000)  # holds A's lock
        with acting_as(conn, "service_role"):
            conn.execute("set local lock_timeout = '2s'")
            _reserve(conn, b, 10, quota=100_000)  # B is not held up by A
    finally:
        first.rollback()
        first.close()


def test_a_reservation_never_grows(db):
    conn, a, _ = db
    with acting_as(conn, "service_role"):
        record_id = _reserve(conn, a, 100, quota=1_000)
        _expect(conn, errors.CheckViolation, "update public.user_files set size_bytes = 101 where id = %s",
                (record_id,))
        conn.execute("update public.user_files set size_bytes = 100, status = 'ready' where id = %s", (record_id,))


def test_sql_applies_over_an_install_made_by_the_earlier_files(pg_clean):
    """Installs made before 003 had insert/update/delete for users, their policies and prefix-only key
    checks; applying sql/ again (in file-name order) takes them away."""
    with psycopg.connect(pg_clean, autocommit=True) as conn:
        conn.execute("grant insert, update, delete on public.user_files to authenticated")
        conn.execute("create policy user_files_insert_own on public.user_files for insert to authenticated "
                     "with check ((select auth.uid()) = user_id)")
        conn.execute("create policy user_files_delete_own on public.user_files for delete to authenticated "
                     "using ((select auth.uid()) = user_id)")
        conn.execute("alter table public.user_files add constraint user_files_s3_key_owner "
                     "check (starts_with(s3_key, 'recordings/' || user_id::text || '/'))")
        apply_schema(pg_clean)
        policies = {r[0] for r in conn.execute("select policyname from pg_policies where tablename = 'user_files'")}
        grants = conn.execute("select privilege_type from information_schema.table_privileges "
                              "where table_name = 'user_files' and grantee = 'authenticated'").fetchall()
        columns = conn.execute("select column_name from information_schema.column_privileges where table_name = "
                               "'user_files' and grantee = 'authenticated' and privilege_type = 'UPDATE'").fetchall()
        checks = {r[0] for r in conn.execute("select conname from pg_constraint where contype = 'c' and "
                                             "conrelid = 'public.user_files'::regclass and conname like '%key%'")}
    # 001 makes the own-rows policies again and 003 the personal-only key check; 005 replaces them with
    # the ones that know studies (sql/005_studies.sql).
    assert policies == {"user_files_select_own_or_study", "user_files_update_own_or_study"}
    assert grants == [("SELECT",)]
    assert sorted(c[0] for c in columns) == ["notes", "session_label", "subject_id", "tags"]
    assert checks == {"user_files_keys_canonical_space"}
