"""The demo's SQLite stores specifics: schema rules in SQL, the quota reservation under threads, and speed at
demo scale."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from lib.errors import KeyOwnershipError, MetadataError, QuotaExceeded
from lib.records import ListQuery, NewRecord, ResearchFields, Status
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.repository.sqlite import register_functions

QUOTA = 10**12


def _new(user_id: str, size: int = 10) -> NewRecord:
    record_id = str(uuid.uuid4())
    return NewRecord(id=record_id, s3_key=f"recordings/{user_id}/2024/05/{record_id}/original.mp4",
                     bucket="demo", original_name=f"{record_id}.mp4", content_type="video/mp4",
                     size_bytes=size)


def _bulk_rows(db, user_id: str, count: int) -> None:
    """Rows written straight into the file: fast fixtures for scale tests."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ids = [str(uuid.uuid4()) for _ in range(count)]
    rows = [(ids[i], user_id, "demo", f"recordings/{user_id}/2024/05/{ids[i]}/original.mp4", f"rec {i}.mp4",
             "video/mp4", i, "ready" if i % 3 else "failed", now, now) for i in range(count)]
    with sqlite3.connect(db) as conn:
        register_functions(conn)
        conn.executemany("insert into user_files (id, user_id, bucket, s3_key, original_name, content_type,"
                         " size_bytes, status, created_at, updated_at) values (?,?,?,?,?,?,?,?,?,?)", rows)


@pytest.mark.parametrize("key", [
    "recordings/{other}/2024/05/{id}/original.mp4",
    "recordings/{user}/../{other}/2024/05/{id}/original.mp4",
    "recordings/{user}//2024/05/{id}/original.mp4",
    "recordings/{user}/2024/05/{other}/original.mp4",
    "recordings/{user}/2024/13/{id}/original.mp4",
    "recordings/{user}/2024/05/{id}/original.mp4/../x",
    "recordings/{user}/2024/05/{id}/thumb.jpg",
])
def test_schema_refuses_keys_outside_the_layout_even_past_the_python_check(tmp_path, key):
    """Issue 14, attack 8, demo side: the SQLite schema checks the same layout as sql/003_trust.sql."""
    db = tmp_path / "demo.db"
    user_id, other, record_id = (str(uuid.uuid4()) for _ in range(3))
    SqliteRepository(db, user_id)
    with sqlite3.connect(db) as conn, pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        register_functions(conn)
        conn.execute("insert into user_files (id, user_id, bucket, s3_key, original_name, content_type,"
                     " created_at, updated_at) values (?, ?, 'b', ?, 'x', 'v', '', '')",
                     (record_id, user_id, key.format(user=user_id, other=other, id=record_id)))


def test_wal_and_schema_survive_reopen(tmp_path):
    db = tmp_path / "demo.db"
    user_id = str(uuid.uuid4())
    record = SqliteServerRecords(db, user_id).reserve(_new(user_id), QUOTA)
    assert SqliteRepository(db, user_id).get(record.id) == record
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_traversal_in_key_is_refused(tmp_path):
    user_id = str(uuid.uuid4())
    server = SqliteServerRecords(tmp_path / "demo.db", user_id)
    bad = NewRecord(**{**_new(user_id).__dict__, "s3_key": f"recordings/{user_id}/../other/x.mp4"})
    with pytest.raises(KeyOwnershipError):
        server.reserve(bad, QUOTA)


def test_concurrent_writers_from_threads(tmp_path):
    db = tmp_path / "demo.db"
    user_id = str(uuid.uuid4())
    server = SqliteServerRecords(db, user_id)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                record = server.reserve(_new(user_id), QUOTA)
                server.mark_failed(record.id, "x")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert SqliteRepository(db, user_id).list(ListQuery(statuses=(Status.FAILED,))).total == 80


def test_quota_race_only_the_reservations_that_fit_win(tmp_path):
    """Issue 14, attack 5, demo side: reservations running at once cannot all pass a check only some fit.
    Eight threads each reserve 400 bytes against a quota of 1000: exactly two succeed."""
    db = tmp_path / "demo.db"
    user_id = str(uuid.uuid4())
    SqliteRepository(db, user_id)
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def reserve() -> None:
        server = SqliteServerRecords(db, user_id)
        start.wait()
        try:
            server.reserve(_new(user_id, size=400), quota_bytes=1_000)
            outcomes.append("reserved")
        except QuotaExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=reserve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 6 + ["reserved"] * 2
    assert sum(r.size_bytes for r in SqliteRepository(db, user_id).iter_all()) == 800


def test_pending_rows_count_and_failed_rows_free_their_reservation(tmp_path):
    user_id = str(uuid.uuid4())
    server = SqliteServerRecords(tmp_path / "demo.db", user_id)
    pending = server.reserve(_new(user_id, size=600), quota_bytes=1_000)
    with pytest.raises(QuotaExceeded, match="600 B of it in unfinished uploads"):
        server.reserve(_new(user_id, size=500), quota_bytes=1_000)
    server.mark_failed(pending.id, "gave up")
    server.reserve(_new(user_id, size=500), quota_bytes=1_000)


def test_a_reservation_never_grows(tmp_path):
    user_id = str(uuid.uuid4())
    server = SqliteServerRecords(tmp_path / "demo.db", user_id)
    record = server.reserve(_new(user_id, size=10), QUOTA)
    with pytest.raises(MetadataError, match="more bytes than it reserved"):
        server.mark_ready(record.id, size_bytes=11, sha256=None, video=None, thumbnail_key=None, preview_key=None)
    assert server.mark_ready(record.id, size_bytes=10, sha256=None, video=None, thumbnail_key=None,
                             preview_key=None).status is Status.READY


def test_the_users_side_changes_research_fields_only(tmp_path):
    user_id = str(uuid.uuid4())
    record = SqliteServerRecords(tmp_path / "demo.db", user_id).reserve(_new(user_id), QUOTA)
    repo = SqliteRepository(tmp_path / "demo.db", user_id)
    assert repo.update_research(record.id, ResearchFields(subject_id="S1")).research.subject_id == "S1"
    with pytest.raises(MetadataError, match="Only research fields"):
        repo._update_research(record.id, {"size_bytes": 0})
    assert not hasattr(repo, "mark_ready") and not hasattr(repo, "delete") and not hasattr(repo, "reserve")


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
