"""Reconciliation on a real S3 server (SeaweedFS): each kind of discrepancy made on purpose, found, repaired."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lib.auth import Caller
from lib.errors import AccessDenied
from lib.keys import record_keys
from lib.records import FileRecord, NewRecord, Status
from lib.settings import S3Settings, Settings
from lib.storage import ObjectStore
from lib.usage import (
    MISSING_REASON,
    STALE_REASON,
    Discrepancy,
    Kind,
    Reconciliation,
    UserRows,
    bucket_wide_usage,
    clean_stale_pending,
    delete_orphans,
    mark_missing_failed,
    reconcile,
    reconcile_bucket,
    repair,
    row_access,
    storage_health,
)
from tests.support.records import sqlite_rows

SETTINGS = Settings(mode="demo", stale_pending_s=3_600)
ME, OTHER = str(uuid.uuid4()), str(uuid.uuid4())
ADMIN = Caller(user_id=ME, is_admin=True)
RESEARCHER = Caller(user_id=ME)


@pytest.fixture
def store(s3_settings: S3Settings) -> ObjectStore:
    return ObjectStore(s3_settings)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "demo.db"


@pytest.fixture(autouse=True)
def _fresh_cache():
    from lib import usage

    usage._bucket_cache.clear()


def _put(s3_client, key: str, size: int) -> str:
    s3_client.put_object(Bucket="pulsevault-test", Key=key, Body=b"x" * size)
    return key


def _record(rows: UserRows, s3_client, *, size: int = 100, status: Status = Status.READY,
            upload: tuple[str, ...] = ("original", "thumb"), stored_size: int | None = None) -> FileRecord:
    """A record as the pipeline leaves it; ``upload`` says which of its objects reach the bucket."""
    record_id = str(uuid.uuid4())
    keys = record_keys(rows.repo.user_id, record_id, "avi", datetime.now(UTC))
    record = rows.server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket="pulsevault-test",
                                           original_name=f"{record_id[:8]}.avi", content_type="video/x-msvideo",
                                           size_bytes=size, thumbnail_key=keys.thumbnail), quota_bytes=10**12)
    if "original" in upload:
        _put(s3_client, keys.original, size if stored_size is None else stored_size)
    if "thumb" in upload:
        _put(s3_client, keys.thumbnail, 3)
    if status is Status.READY:
        record = rows.server.mark_ready(record_id, size_bytes=size, sha256=None, video=None,
                                        thumbnail_key=keys.thumbnail, preview_key=None)
    elif status is Status.FAILED:
        record = rows.server.mark_failed(record_id, "broken on purpose")
    return record


def _age(db: Path, record_id: str, hours: float) -> None:
    """Backdate a row, as if its upload started ``hours`` ago."""
    then = (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with sqlite3.connect(db) as conn:
        conn.execute("update user_files set created_at = ? where id = ?", (then, record_id))


def _listing(s3_client) -> set[str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket="pulsevault-test")
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def of_kind(found: Reconciliation, kind: Kind) -> list[Discrepancy]:
    return [d for d in found.discrepancies if d.kind is kind]


def test_each_kind_is_found_and_repaired(store, db, s3_client):
    rows = sqlite_rows(db, ME)
    repo = rows.repo
    good = _record(rows, s3_client)
    _record(rows, s3_client, status=Status.FAILED, upload=())  # failed, objects gone: as it should be
    in_flight = _record(rows, s3_client, status=Status.PENDING, upload=("original",))  # uploading now
    missing = _record(rows, s3_client, upload=("thumb",))
    wrong_size = _record(rows, s3_client, size=100, stored_size=60)
    stale = _record(rows, s3_client, status=Status.PENDING, upload=("original",))
    _age(db, stale.id, hours=2)
    orphan = _put(s3_client, f"recordings/{ME}/2024/01/{uuid.uuid4()}/original.mp4", 42)
    stray = _put(s3_client, f"recordings/{ME}/notes.txt", 5)
    stray_derivative = _put(s3_client, good.s3_key.rsplit("/", 1)[0] + "/preview.mp4", 9)  # no row names it
    theirs = _put(s3_client, f"recordings/{OTHER}/2024/01/{uuid.uuid4()}/original.mp4", 1_000)

    found = reconcile(store, repo, ME, SETTINGS)

    assert found.objects_checked == 10 and found.rows_checked == 6
    assert {d.key for d in of_kind(found, Kind.ORPHAN)} == {orphan, stray, stray_derivative}
    assert theirs not in {d.key for d in found.discrepancies}  # another user's prefix is never listed
    assert {d.record_id for d in of_kind(found, Kind.MISSING)} == {missing.id, wrong_size.id}
    assert "60 bytes" in next(d.detail for d in of_kind(found, Kind.MISSING) if d.record_id == wrong_size.id)
    assert [d.record_id for d in of_kind(found, Kind.STALE_PENDING)] == [stale.id]
    assert "1 partial file" in of_kind(found, Kind.STALE_PENDING)[0].detail
    assert in_flight.id not in {d.record_id for d in found.discrepancies}

    deleted = delete_orphans(store, ME, [d.key for d in of_kind(found, Kind.ORPHAN)])
    marked = mark_missing_failed(rows, [d.record_id for d in of_kind(found, Kind.MISSING)])
    cleaned = clean_stale_pending(store, rows, [stale.id])

    assert set(deleted.done) == {orphan, stray, stray_derivative} and not deleted.errors
    assert set(marked.done) == {missing.id, wrong_size.id}
    assert cleaned.done == (stale.id,)
    assert {repo.get(missing.id).error, repo.get(wrong_size.id).error} == {MISSING_REASON}
    assert repo.get(stale.id).status is Status.FAILED and repo.get(stale.id).error == STALE_REASON
    assert not any(k.startswith(stale.s3_key.rsplit("/", 1)[0]) for k in _listing(s3_client))
    assert theirs in _listing(s3_client) and good.s3_key in _listing(s3_client)
    assert reconcile(store, repo, ME, SETTINGS).ok


def test_repairs_skip_rows_that_changed_since_the_check(store, db, s3_client):
    rows = sqlite_rows(db, ME)
    ready = _record(rows, s3_client)
    failed = _record(rows, s3_client, status=Status.FAILED, upload=())
    assert clean_stale_pending(store, rows, [ready.id]).skipped == ((ready.id, "it is ready now"),)
    assert mark_missing_failed(rows, [failed.id, str(uuid.uuid4())]).done == ()
    assert rows.repo.get(ready.id).status is Status.READY and ready.s3_key in _listing(s3_client)


def test_cleaning_a_stale_upload_aborts_its_unfinished_multipart_upload(store, db, s3_client):
    """A stale browser upload holds parts in an unfinished multipart upload (not in any listing); the
    repair aborts it, removes what was stored and ends the row's reservation."""
    rows = sqlite_rows(db, ME)
    stale = _record(rows, s3_client, status=Status.PENDING, upload=())
    upload_id = store.create_multipart(stale.s3_key, owner=ME, content_type="video/x-msvideo")
    s3_client.upload_part(Bucket="pulsevault-test", Key=stale.s3_key, UploadId=upload_id, PartNumber=1,
                          Body=b"x" * 1_000)
    _age(db, stale.id, hours=2)
    assert clean_stale_pending(store, rows, [stale.id]).done == (stale.id,)
    assert store.list_multipart_uploads(f"recordings/{ME}/", owner=ME) == []
    assert rows.repo.get(stale.id).status is Status.FAILED


def test_orphans_outside_the_callers_prefix_are_refused(store, s3_client):
    theirs = _put(s3_client, f"recordings/{OTHER}/2024/01/{uuid.uuid4()}/original.mp4", 10)
    with pytest.raises(AccessDenied):
        delete_orphans(store, ME, [theirs])
    assert theirs in _listing(s3_client)


def test_admin_checks_and_repairs_the_whole_bucket_in_demo_mode(store, db, s3_client):
    mine, theirs = sqlite_rows(db, ME), sqlite_rows(db, OTHER)
    rows_for = row_access(mine.repo, mine.server)
    _record(mine, s3_client)
    their_missing = _record(theirs, s3_client, upload=())
    their_orphan = _put(s3_client, f"recordings/{OTHER}/2024/02/{uuid.uuid4()}/thumb.jpg", 8)
    loose = _put(s3_client, "recordings/loose.bin", 4)
    progress: list[int] = []

    found = reconcile_bucket(store, SETTINGS, ADMIN, rows_for, progress=lambda n, _: progress.append(n))

    assert {r.user_id for r in found.checked} == {ME, OTHER}
    assert {(d.kind, d.user_id) for d in found.discrepancies} == {(Kind.MISSING, OTHER), (Kind.ORPHAN, OTHER)}
    assert [(p.user_id, p.objects) for p in found.unchecked] == [("", 1)]  # the loose object: nobody's
    assert progress[-1] == 4
    for kind in (Kind.ORPHAN, Kind.MISSING):
        with pytest.raises(AccessDenied):  # the same repair, asked by a researcher
            repair(kind, found.discrepancies, store=store, rows_for=rows_for, caller=RESEARCHER)
        result = repair(kind, found.discrepancies, store=store, rows_for=rows_for, caller=ADMIN)
        assert result.done and not result.errors
    assert their_orphan not in _listing(s3_client) and loose in _listing(s3_client)
    assert theirs.repo.get(their_missing.id).status is Status.FAILED
    assert not reconcile_bucket(store, SETTINGS, ADMIN, rows_for).discrepancies


def test_in_cloud_mode_other_users_prefixes_are_listed_not_judged(store, db, s3_client):
    mine = sqlite_rows(db, ME)
    _record(mine, s3_client)
    _record(sqlite_rows(db, OTHER), s3_client, upload=("original",))
    _put(s3_client, f"recordings/{OTHER}/2024/02/{uuid.uuid4()}/thumb.jpg", 8)
    def only_mine(user_id: str) -> UserRows | None:  # what row-level security lets a session read
        return mine if user_id == ME else None

    found = reconcile_bucket(store, SETTINGS, ADMIN, only_mine)
    assert [r.user_id for r in found.checked] == [ME] and not found.discrepancies
    assert [(p.user_id, p.objects, p.bytes) for p in found.unchecked] == [(OTHER, 2, 108)]
    with pytest.raises(AccessDenied):
        reconcile_bucket(store, SETTINGS, RESEARCHER, only_mine)


def test_bucket_wide_usage_from_the_real_listing(store, s3_client):
    _put(s3_client, f"recordings/{ME}/2024/05/{uuid.uuid4()}/original.avi", 300)
    _put(s3_client, f"recordings/{OTHER}/2024/06/{uuid.uuid4()}/original.avi", 20)
    usage = bucket_wide_usage(store, ADMIN)
    assert [(r.user_id, r.month, r.bytes, r.objects) for r in usage.rows] == sorted(
        [(ME, "2024-05", 300, 1), (OTHER, "2024-06", 20, 1)])
    with pytest.raises(AccessDenied):
        bucket_wide_usage(store, RESEARCHER)


def test_storage_health(store, s3_settings):
    ok = storage_health(store)
    assert ok.ok and ok.latency_ms >= 0 and "pulsevault-test" in ok.message
    broken = storage_health(ObjectStore(S3Settings(**{**s3_settings.__dict__, "bucket": "no-such-bucket"})))
    assert not broken.ok and broken.message
