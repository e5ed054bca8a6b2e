"""The Usage page's figures from known fixtures, in both repositories (demo SQLite, Supabase).

Same rows, same answers: the SQLite queries and sql/004_usage_by_day.sql's
usage_summary() must agree, and lib.usage adds the quota on top.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from lib.records import DAILY_HISTORY_DAYS, NewRecord, ResearchFields, VideoProperties
from lib.settings import Settings
from lib.usage import Period, UserRows, upload_history, usage_csv, user_usage
from tests.support.records import sqlite_rows, supabase_rows

SETTINGS = Settings(mode="demo", quota_bytes=10_000)
Backdate = Callable[[str, datetime], None]


def _video(lossless: bool) -> VideoProperties:
    return VideoProperties(duration_s=1.0, fps=30.0, width=64, height=48, frame_count=30, codec="x",
                           lossless=lossless, browser_playable=not lossless)


@pytest.fixture(params=["sqlite", "supabase"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Callable[[str], UserRows], Backdate]:
    """(make_rows(name), backdate(record_id, when)) for one of the two stores."""
    if request.param == "sqlite":
        db = tmp_path / "demo.db"

        def backdate_sqlite(record_id: str, when: datetime) -> None:
            with sqlite3.connect(db) as conn:
                conn.execute("update user_files set created_at = ? where id = ?",
                             (when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), record_id))

        return (lambda name: sqlite_rows(db)), backdate_sqlite
    standin = request.getfixturevalue("supabase_standin")

    def backdate_pg(record_id: str, when: datetime) -> None:
        with psycopg.connect(standin.pg_dsn, autocommit=True) as conn:
            # The update trigger keeps created_at fixed; fixtures step around it for this session only.
            conn.execute("set session_replication_role = replica")
            conn.execute("update public.user_files set created_at = %s where id = %s", (when, record_id))

    return (lambda name: supabase_rows(standin, name)), backdate_pg


def _add(rows: UserRows, size: int, *, ready: bool = True, content_type: str = "video/x-msvideo",
         lossless: bool | None = True, subject: str = "") -> str:
    record_id = str(uuid.uuid4())
    key = f"recordings/{rows.repo.user_id}/2024/05/{record_id}/original.avi"
    rows.server.reserve(NewRecord(id=record_id, s3_key=key, bucket="lab", original_name=f"{size}.avi",
                                  content_type=content_type, size_bytes=size,
                                  research=ResearchFields(subject_id=subject)), quota_bytes=10**12)
    if ready:
        rows.server.mark_ready(record_id, size_bytes=size, sha256=None,
                               video=None if lossless is None else _video(lossless), thumbnail_key=None,
                               preview_key=None)
    return record_id


def test_usage_figures_from_known_rows(backend):
    make_repo, backdate = backend
    ada, bob = make_repo("ada"), make_repo("bob")
    march = [_add(ada, 1_000, subject="S01"), _add(ada, 2_000, content_type="video/mp4", lossless=False,
                                                   subject="S02")]
    april = [_add(ada, 500, subject="S01"), _add(ada, 250, lossless=None)]
    _add(ada, 9_999, ready=False)  # pending: not stored yet, not counted
    _add(bob, 7_777, subject="S01")  # another user's bytes: never in ada's figures
    for record_id in march:
        backdate(record_id, datetime(2024, 3, 15, 12, tzinfo=UTC))
    for record_id in april:
        backdate(record_id, datetime(2024, 4, 30, 23, 59, 59, tzinfo=UTC))  # last second of April, UTC

    usage = user_usage(ada.repo, SETTINGS)
    s = usage.summary
    assert (s.total_bytes, s.total_count) == (3_750, 4)
    assert (usage.quota_bytes, usage.remaining_bytes, usage.over_quota) == (10_000, 6_250, False)
    assert usage.used_fraction == pytest.approx(0.375)
    assert [(b.label, b.bytes, b.count) for b in s.by_month] == [("2024-03", 3_000, 2), ("2024-04", 750, 2)]
    assert [(b.label, b.bytes, b.count) for b in s.by_content_type] == [
        ("video/mp4", 2_000, 1), ("video/x-msvideo", 1_750, 3)]
    assert [(b.label, b.bytes) for b in s.by_lossless] == [("lossy", 2_000), ("lossless", 1_500), ("unknown", 250)]
    assert [(b.label, b.bytes, b.count) for b in s.by_subject] == [
        ("S02", 2_000, 1), ("S01", 1_500, 2), ("(none)", 250, 1)]
    assert [r.size_bytes for r in s.largest] == [2_000, 1_000, 500, 250]
    assert s.by_day == ()  # 2024 is long before the daily history
    history = upload_history(s)
    assert history.period is Period.MONTH
    assert [(b.label, b.bytes, b.count) for b in history.stored] == [
        ("2024-02", 0, 0), ("2024-03", 3_000, 2), ("2024-04", 3_750, 4)]
    rows = list(csv.reader(io.StringIO(usage_csv(usage))))
    assert ["month", "2024-04", "750", "2"] in rows and not any("7777" in cell for row in rows for cell in row)

    assert user_usage(bob.repo, SETTINGS).summary.total_bytes == 7_777


def test_an_empty_account(backend):
    make_repo, _ = backend
    usage = user_usage(make_repo("carol").repo, SETTINGS)
    assert (usage.used_bytes, usage.summary.total_count, usage.remaining_bytes) == (0, 0, 10_000)
    assert usage.summary.by_month == () and usage.summary.largest == ()


def test_recent_uploads_are_counted_per_day(backend):
    """by_day covers the daily history only (UTC days, in date order); a history all within it is charted by
    day, one reaching further back by month."""
    make_repo, backdate = backend
    now = datetime.now(UTC)
    recent, mixed = make_repo("recent"), make_repo("mixed")
    _add(recent, 100), _add(recent, 200)
    backdate(_add(recent, 40), now - timedelta(days=3))
    _add(recent, 9, ready=False)  # pending: not counted
    today, three_days_ago = now.date().isoformat(), (now - timedelta(days=3)).date().isoformat()

    s = user_usage(recent.repo, SETTINGS).summary
    assert [(b.label, b.bytes, b.count) for b in s.by_day] == [(three_days_ago, 40, 1), (today, 300, 2)]
    history = upload_history(s)
    assert history.period is Period.DAY
    assert [(b.bytes, b.count) for b in history.stored] == [(0, 0), (40, 1), (340, 3)]
    assert ["day", today, "300", "2"] in csv.reader(io.StringIO(usage_csv(user_usage(recent.repo, SETTINGS))))

    _add(mixed, 10)
    backdate(_add(mixed, 20), now - timedelta(days=DAILY_HISTORY_DAYS + 5))
    s = user_usage(mixed.repo, SETTINGS).summary
    assert [(b.label, b.bytes) for b in s.by_day] == [(today, 10)]
    assert upload_history(s).period is Period.MONTH
