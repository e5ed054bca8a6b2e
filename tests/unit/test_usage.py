"""lib.usage without a bucket: quota maths, CSV, the admin gate, the listing cache, progress."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from lib.auth import Caller
from lib.errors import AccessDenied
from lib.records import UsageBucket, UsageSummary
from lib.repository import SqliteRepository, SqliteServerRecords, SupabaseRepository, SupabaseServerRecords
from lib.settings import GIB, Settings
from lib.storage import ObjectInfo
from lib.usage import (
    PROGRESS_EVERY,
    UNKNOWN_MONTH,
    Discrepancy,
    Kind,
    Period,
    UserUsage,
    bucket_usage_csv,
    bucket_wide_usage,
    reconcile,
    reconcile_bucket,
    repair,
    row_access,
    upload_history,
    usage_csv,
)

SETTINGS = Settings(mode="demo", quota_bytes=10 * GIB)
A, B = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
ADMIN = Caller(user_id="cccccccc-0000-4000-8000-000000000003", is_admin=True)
RESEARCHER = Caller(user_id=A)


class FakeStore:
    """Just enough of ObjectStore to count what lib.usage asks of the bucket."""

    def __init__(self, objects: list[ObjectInfo], bucket: str = "lab") -> None:
        self.objects = objects
        self.bucket = bucket
        self.listings = 0
        self.deleted: list[str] = []

    def iter_all_objects(self, prefix: str = "recordings/"):
        self.listings += 1
        return iter([o for o in self.objects if o.key.startswith(prefix)])

    def iter_objects(self, prefix: str, *, owner: str):
        return self.iter_all_objects(prefix)

    def delete(self, keys, *, owner: str):
        raise AssertionError("nothing may be deleted in these tests")


def _obj(key: str, size: int) -> ObjectInfo:
    return ObjectInfo(key=key, size=size, etag="e", last_modified=datetime(2024, 5, 1, tzinfo=UTC))


def _key(user: str, month: str = "2024/05", name: str = "original.avi") -> str:
    return f"recordings/{user}/{month}/{uuid.uuid4()}/{name}"


def _summary(**changes) -> UsageSummary:
    base = dict(total_bytes=0, total_count=0, by_day=(), by_month=(), by_content_type=(), by_lossless=(),
                by_subject=(), largest=())
    return UsageSummary(**{**base, **changes})


@pytest.fixture(autouse=True)
def _fresh_cache():
    from lib import usage

    usage._bucket_cache.clear()
    yield
    usage._bucket_cache.clear()


def test_quota_figures():
    usage = UserUsage(_summary(total_bytes=3 * GIB, total_count=2), quota_bytes=10 * GIB)
    assert (usage.used_bytes, usage.remaining_bytes, usage.over_quota) == (3 * GIB, 7 * GIB, False)
    assert usage.used_fraction == pytest.approx(0.3)
    over = UserUsage(_summary(total_bytes=12 * GIB), quota_bytes=10 * GIB)
    assert (over.remaining_bytes, over.over_quota) == (0, True)
    assert over.used_fraction == pytest.approx(1.2)  # the text says 120 %, the bar clamps


def test_an_old_history_is_a_running_total_per_month_from_zero():
    summary = _summary(total_bytes=16, total_count=4,
                       by_month=(UsageBucket("2024-06", 5, 1), UsageBucket("2024-01", 10, 2),
                                 UsageBucket("2024-05", 1, 1)),
                       by_day=(UsageBucket("2024-06-03", 5, 1),))  # not every recording is recent
    history = upload_history(summary)
    assert history.period is Period.MONTH
    assert [b.label for b in history.uploads] == ["2024-01", "2024-05", "2024-06"]
    assert [(b.label, b.bytes, b.count) for b in history.stored] == [
        ("2023-12", 0, 0), ("2024-01", 10, 2), ("2024-05", 11, 3), ("2024-06", 16, 4)]


def test_a_recent_history_is_counted_per_day_so_one_day_of_uploads_is_a_line_not_a_dot():
    summary = _summary(total_bytes=30, total_count=3, by_month=(UsageBucket("2026-03", 30, 3),),
                       by_day=(UsageBucket("2026-03-01", 30, 3),))
    history = upload_history(summary)
    assert history.period is Period.DAY
    assert [(b.label, b.bytes, b.count) for b in history.stored] == [("2026-02-28", 0, 0), ("2026-03-01", 30, 3)]
    assert upload_history(_summary()).stored == ()


def test_usage_csv_has_every_figure():
    summary = _summary(total_bytes=150, total_count=3, by_month=(UsageBucket("2024-05", 150, 3),),
                       by_content_type=(UsageBucket("video/mp4", 100, 2), UsageBucket("video/x-msvideo", 50, 1)),
                       by_lossless=(UsageBucket("lossless", 150, 3),),
                       by_subject=(UsageBucket("S1, \"pilot\"", 150, 3),))
    rows = list(csv.reader(io.StringIO(usage_csv(UserUsage(summary, quota_bytes=1_000)))))
    assert rows[0] == ["section", "label", "bytes", "count"]
    assert ["total", "stored", "150", "3"] in rows
    assert ["quota", "remaining", "850", ""] in rows
    assert ["content_type", "video/x-msvideo", "50", "1"] in rows
    assert ["subject", "S1, \"pilot\"", "150", "3"] in rows  # quoted, not split


def test_non_admin_cannot_obtain_the_bucket_wide_view():
    store = FakeStore([_obj(_key(A), 10)])
    for caller in (RESEARCHER, Caller(user_id=B, is_admin=False)):
        with pytest.raises(AccessDenied):
            bucket_wide_usage(store, caller)
        with pytest.raises(AccessDenied):
            reconcile_bucket(store, SETTINGS, caller, lambda _uid: None)
    assert store.listings == 0  # refused before the bucket was even listed


def test_a_cached_listing_is_no_way_around_the_admin_check():
    store = FakeStore([_obj(_key(A), 10)])
    bucket_wide_usage(store, ADMIN)
    with pytest.raises(AccessDenied):
        bucket_wide_usage(store, RESEARCHER)


def test_bucket_wide_usage_per_user_and_month():
    store = FakeStore([
        _obj(_key(A, "2024/05"), 100), _obj(_key(A, "2024/05", "thumb.jpg"), 5), _obj(_key(A, "2024/06"), 50),
        _obj(_key(B, "2024/06"), 1_000), _obj(f"recordings/{B}/notes.txt", 1), _obj("recordings/stray.bin", 7),
    ])
    usage = bucket_wide_usage(store, ADMIN)
    assert (usage.total_bytes, usage.total_objects) == (1_163, 6)
    assert [(r.user_id, r.bytes, r.objects) for r in usage.by_user] == [(B, 1_001, 2), (A, 155, 3), ("", 7, 1)]
    assert [(r.month, r.bytes, r.objects) for r in usage.by_month] == [
        ("2024-05", 105, 2), ("2024-06", 1_050, 2), (UNKNOWN_MONTH, 8, 2)]
    assert {(r.user_id, r.month, r.bytes) for r in usage.rows} >= {(A, "2024-05", 105), (B, "2024-06", 1_000)}
    lines = bucket_usage_csv(usage).splitlines()
    assert lines[0] == "user_id,month,bytes,objects" and len(lines) == 1 + len(usage.rows)


def test_bucket_listing_is_cached_for_a_short_time():
    store = FakeStore([_obj(_key(A), 10)])
    now = [1_000.0]
    first = bucket_wide_usage(store, ADMIN, clock=lambda: now[0])
    store.objects.append(_obj(_key(B), 20))
    now[0] += 30
    assert bucket_wide_usage(store, ADMIN, clock=lambda: now[0]) is first
    assert bucket_wide_usage(store, ADMIN, refresh=True, clock=lambda: now[0]).total_bytes == 30
    store.objects.append(_obj(_key(B), 40))
    now[0] += 61
    assert bucket_wide_usage(store, ADMIN, clock=lambda: now[0]).total_bytes == 70
    assert store.listings == 3


def test_listing_reports_progress_for_big_buckets():
    count = 2 * PROGRESS_EVERY + 500
    store = FakeStore([_obj(f"recordings/{A}/2024/05/{i}/original.avi", 2) for i in range(count)])
    seen: list[tuple[int, int]] = []
    bucket_wide_usage(store, ADMIN, progress=lambda n, size: seen.append((n, size)))
    assert seen == [(PROGRESS_EVERY, 2 * PROGRESS_EVERY), (2 * PROGRESS_EVERY, 4 * PROGRESS_EVERY),
                    (count, 2 * count)]


def test_reconcile_is_for_the_callers_own_rows_only(tmp_path):
    repo = SqliteRepository(tmp_path / "demo.db", A)
    with pytest.raises(AccessDenied):
        reconcile(FakeStore([]), repo, B, SETTINGS)


def test_repairing_another_users_findings_needs_an_admin(tmp_path):
    store = FakeStore([])
    theirs = [Discrepancy(Kind.ORPHAN, B, _key(B), None, 10, "")]
    rows_for = row_access(SqliteRepository(tmp_path / "demo.db", A), SqliteServerRecords(tmp_path / "demo.db", A))
    for kind in Kind:
        with pytest.raises(AccessDenied):
            repair(kind, [replace(theirs[0], kind=kind)], store=store, rows_for=rows_for, caller=RESEARCHER)


def test_rows_visible_in_cloud_mode_are_only_the_callers(tmp_path):
    own = SupabaseRepository(client=None, user_id=A)
    assert own.rows_of(A) is own
    assert own.rows_of(B) is None
    server = SupabaseServerRecords(client=None, user_id=A)
    assert server.rows_of(A) is server and server.rows_of(B) is None
    rows_for = row_access(own, server)
    assert rows_for(A).repo is own and rows_for(B) is None


def test_rows_visible_in_demo_mode_are_everyones(tmp_path):
    own = SqliteRepository(tmp_path / "demo.db", A)
    assert own.rows_of(A) is own
    other = own.rows_of(B)
    assert other.user_id == B and other.db_path == own.db_path
    rows = row_access(own, SqliteServerRecords(own.db_path, A))(B)
    assert rows.repo.user_id == rows.server.user_id == B
