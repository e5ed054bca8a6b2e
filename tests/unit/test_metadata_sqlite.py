"""SqliteRepository specifics: schema rules in SQL, threads, and speed at demo scale."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from lib.errors import KeyOwnershipError
from lib.records import ListQuery, NewRecord, Status
from lib.repository import SqliteRepository


def _new(user_id: str, size: int = 10) -> NewRecord:
    record_id = str(uuid.uuid4())
    return NewRecord(id=record_id, s3_key=f"recordings/{user_id}/2024/05/{record_id}/original.mp4",
                     bucket="demo", original_name=f"{record_id}.mp4", content_type="video/mp4",
                     size_bytes=size)


def _bulk_rows(db, user_id: str, count: int) -> None:
    """Rows written straight into the file: fast fixtures for scale tests."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rows = [(str(uuid.uuid4()), user_id, "demo", f"recordings/{user_id}/x/{i}.mp4", f"rec {i}.mp4",
             "video/mp4", i, "ready" if i % 3 else "failed", now, now) for i in range(count)]
    with sqlite3.connect(db) as conn:
        conn.executemany("insert into user_files (id, user_id, bucket, s3_key, original_name, content_type,"
                         " size_bytes, status, created_at, updated_at) values (?,?,?,?,?,?,?,?,?,?)", rows)


def test_schema_refuses_foreign_keys_even_past_the_python_check(tmp_path):
    db = tmp_path / "demo.db"
    user_id = str(uuid.uuid4())
    SqliteRepository(db, user_id)
    with sqlite3.connect(db) as conn, pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute("insert into user_files (id, user_id, bucket, s3_key, original_name, content_type,"
                     " created_at, updated_at)"
                     " values ('x', ?, 'b', 'recordings/other/x.mp4', 'x', 'v', '', '')",
                     (user_id,))


def test_wal_and_schema_survive_reopen(tmp_path):
    db = tmp_path / "demo.db"
    user_id = str(uuid.uuid4())
    record = SqliteRepository(db, user_id).create_pending(_new(user_id))
    assert SqliteRepository(db, user_id).get(record.id) == record
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_traversal_in_key_is_refused(tmp_path):
    user_id = str(uuid.uuid4())
    repo = SqliteRepository(tmp_path / "demo.db", user_id)
    bad = NewRecord(**{**_new(user_id).__dict__, "s3_key": f"recordings/{user_id}/../other/x.mp4"})
    with pytest.raises(KeyOwnershipError):
        repo.create_pending(bad)


def test_concurrent_writers_from_threads(tmp_path):
    db = tmp_path / "demo.db"
    user_id = str(uuid.uuid4())
    repo = SqliteRepository(db, user_id)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                record = repo.create_pending(_new(user_id))
                repo.mark_failed(record.id, "x")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert repo.list(ListQuery(statuses=(Status.FAILED,))).total == 80


def test_listing_and_usage_stay_fast_at_demo_scale(tmp_path):
    db = tmp_path / "demo.db"
    user_id = str(uuid.uuid4())
    repo = SqliteRepository(db, user_id)
    _bulk_rows(db, user_id, 10_000)
    _bulk_rows(db, str(uuid.uuid4()), 2_000)
    started = time.perf_counter()
    page = repo.list(ListQuery(text="rec 99", statuses=(Status.READY,), page=2, page_size=20))
    usage = repo.usage()
    elapsed = time.perf_counter() - started
    assert page.total == sum(1 for i in range(10_000) if "rec 99" in f"rec {i}.mp4" and i % 3)
    assert usage.total_count == sum(1 for i in range(10_000) if i % 3)
    assert usage.largest[0].size_bytes == 9_998
    assert elapsed < 1.0  # generous for a shared CI box; typically ~50 ms


def test_repr_names_the_user_not_the_data(tmp_path):
    repo = SqliteRepository(tmp_path / "demo.db", "u1")
    assert "u1" in repr(repo)
