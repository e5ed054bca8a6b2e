"""Demo-mode metadata: ``SqliteRepository`` and its schema, one local SQLite file.

The schema mirrors ``public.user_files`` in ``sql/001_user_files.sql`` column
for column (tests/sql/test_schema_agreement.py fails when they drift), and the
queries mirror the rules row-level security enforces in the cloud: every
statement is limited to the repository's own user.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lib.errors import KeyOwnershipError, MetadataError, MetadataUnavailable
from lib.records import SEARCH_COLUMNS, FileRecord, ListQuery, NewRecord, RecordPage, Status, UsageBucket, UsageSummary
from lib.repository.base import (
    LARGEST_COUNT,
    RowUpdates,
    check_query,
    day_start,
    existing_record_id,
    iso,
    like_pattern,
    new_row_id,
    not_found,
    owned_key,
    owned_optional_key,
    record_from_row,
    research_columns,
    storable_text,
    video_columns,
)

SQLITE_SCHEMA = """
create table if not exists user_files (
  id               text primary key,
  user_id          text not null,
  bucket           text not null,
  s3_key           text not null unique,
  original_name    text not null,
  content_type     text not null,
  size_bytes       integer not null default 0 check (size_bytes >= 0),
  sha256           text,
  status           text not null default 'pending' check (status in ('pending', 'ready', 'failed')),
  error            text,
  thumbnail_key    text,
  preview_key      text,
  ground_truth_key text,
  ground_truth_name text,
  ground_truth_bytes integer not null default 0 check (ground_truth_bytes >= 0),
  duration_s       real,
  fps              real,
  width            integer,
  height           integer,
  frame_count      integer,
  codec            text,
  lossless         integer,
  browser_playable integer,
  bit_rate         integer,
  subject_id       text not null default '',
  session_label    text not null default '',
  notes            text not null default '',
  tags             text not null default '[]',
  analysis         text,
  created_at       text not null,
  updated_at       text not null,
  check (substr(s3_key, 1, length('recordings/' || user_id || '/')) = 'recordings/' || user_id || '/')
);
create index if not exists user_files_user_created_idx on user_files (user_id, created_at desc);
create index if not exists user_files_user_sha256_idx on user_files (user_id, sha256);
create index if not exists user_files_usage_idx
  on user_files (user_id, status, size_bytes, content_type, lossless, subject_id, created_at);
-- Usage breakdowns read these in group order, so SQLite aggregates while it scans
-- instead of sorting 100k rows (see bench/usage.py). created_at makes the month one covering.
create index if not exists user_files_usage_month_idx
  on user_files (user_id, status, substr(created_at, 1, 7), content_type, lossless, size_bytes, created_at);
create index if not exists user_files_usage_subject_idx
  on user_files (user_id, status, subject_id, size_bytes);
"""

_SQLITE_USAGE = """
select substr(created_at, 1, 7) as month, content_type,
       case lossless when 1 then 'lossless' when 0 then 'lossy' else 'unknown' end as lossless_label,
       sum(size_bytes + ground_truth_bytes) as bytes, count(*) as count
from user_files where user_id = ? and status = 'ready'
group by substr(created_at, 1, 7), content_type, lossless
"""
"""(month, type, lossless) combinations, at most a few hundred, from one ordered index scan;
the month, type and lossless breakdowns are summed from them (SQLite has no GROUPING SETS)."""

_SQLITE_USAGE_BY_SUBJECT = """
select case when subject_id = '' then '(none)' else subject_id end as subject,
       sum(size_bytes + ground_truth_bytes) as bytes, count(*) as count
from user_files where user_id = ? and status = 'ready'
group by subject_id
"""
"""Subjects on their own: folded into the combinations above they would multiply them."""


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


class SqliteRepository(RowUpdates):
    """Demo-mode metadata in a SQLite file, with the same rules RLS enforces in the cloud.

    One connection per call (cheap in SQLite), so the Streamlit script threads
    never share one; WAL lets readers run alongside the single writer.
    """

    def __init__(self, db_path: str | Path, user_id: str) -> None:
        self.db_path = str(db_path)
        self.user_id = str(user_id)
        self._ensure_schema()

    def __repr__(self) -> str:
        return f"SqliteRepository({self.db_path!r}, user_id={self.user_id!r})"

    def rows_of(self, user_id: str) -> SqliteRepository:
        """Any user's rows: the demo's one local file holds everyone's, and its admin runs it."""
        return self if str(user_id) == self.user_id else SqliteRepository(self.db_path, user_id)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
        except sqlite3.Error as exc:
            raise MetadataUnavailable(f"The demo database cannot be opened: {exc}") from exc
        conn.row_factory = sqlite3.Row
        conn.execute("pragma busy_timeout = 10000")
        return conn

    def _ensure_schema(self) -> None:
        # Cheap when it exists already; per instance, so a deleted demo file comes back.
        conn = self._connect()
        try:
            conn.execute("pragma journal_mode = wal")
            conn.executescript(SQLITE_SCHEMA)
        except sqlite3.Error as exc:
            raise MetadataUnavailable(f"The demo database cannot be prepared: {exc}") from exc
        finally:
            conn.close()

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        conn = self._connect()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.IntegrityError as exc:
            raise _sqlite_integrity_error(exc) from exc
        except sqlite3.Error as exc:
            raise MetadataError(f"The demo database refused the request: {exc}") from exc
        finally:
            conn.close()

    def _row(self, row: sqlite3.Row) -> FileRecord:
        data = dict(row)
        data["tags"] = json.loads(data["tags"] or "[]")
        data["analysis"] = json.loads(data["analysis"]) if data["analysis"] else None
        return record_from_row(data)

    def _update(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        values = {**values, "updated_at": iso(datetime.now(UTC))}
        assignments = ", ".join(f"{column} = ?" for column in values)
        rows = self._query(
            f"update user_files set {assignments} where id = ? and user_id = ? returning *",
            (*(_sqlite_value(v) for v in values.values()), existing_record_id(record_id), self.user_id),
        )
        if not rows:
            raise not_found()
        return self._row(rows[0])

    def create_pending(self, new: NewRecord) -> FileRecord:
        owned_key(new.s3_key, self.user_id)
        owned_optional_key(new.thumbnail_key, self.user_id)
        owned_optional_key(new.preview_key, self.user_id)
        now = iso(datetime.now(UTC))
        values = {
            "id": new_row_id(new.id), "user_id": self.user_id, "bucket": new.bucket, "s3_key": new.s3_key,
            "original_name": new.original_name, "content_type": new.content_type,
            "size_bytes": new.size_bytes, "sha256": new.sha256, "status": Status.PENDING.value,
            "thumbnail_key": new.thumbnail_key, "preview_key": new.preview_key,
            **video_columns(new.video), **research_columns(new.research),
            "created_at": now, "updated_at": now,
        }
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        rows = self._query(
            f"insert into user_files ({columns}) values ({marks}) returning *",
            tuple(_sqlite_value(v) for v in values.values()),
        )
        return self._row(rows[0])

    def get(self, record_id: str) -> FileRecord:
        rows = self._query("select * from user_files where id = ? and user_id = ?",
                           (existing_record_id(record_id), self.user_id))
        if not rows:
            raise not_found()
        return self._row(rows[0])

    def _where(self, query: ListQuery) -> tuple[str, list[Any]]:
        clauses, params = ["user_id = ?"], [self.user_id]
        if text := storable_text(query.text).strip():
            pattern = like_pattern(text)
            clauses.append("(" + " or ".join(f"{c} like ? escape '\\'" for c in SEARCH_COLUMNS) + ")")
            params += [pattern] * len(SEARCH_COLUMNS)
        if query.statuses:
            clauses.append(f"status in ({', '.join('?' for _ in query.statuses)})")
            params += [Status(s).value for s in query.statuses]
        for tag in query.tags:
            clauses.append("exists (select 1 from json_each(user_files.tags) where value = ?)")
            params.append(tag)
        if query.date_from:
            clauses.append("created_at >= ?")
            params.append(iso(day_start(query.date_from)))
        if query.date_to:
            clauses.append("created_at < ?")
            params.append(iso(day_start(query.date_to + timedelta(days=1))))
        if query.lossless is not None:
            clauses.append("lossless = ?")
            params.append(int(query.lossless))
        return " and ".join(clauses), params

    def list(self, query: ListQuery) -> RecordPage:
        check_query(query)
        where, params = self._where(query)
        direction = "desc" if query.descending else "asc"
        total = self._query(f"select count(*) from user_files where {where}", tuple(params))[0][0]
        rows = self._query(
            f"select * from user_files where {where} "
            f"order by {query.sort} {direction} nulls last, id {direction} limit ? offset ?",
            (*params, query.page_size, (query.page - 1) * query.page_size),
        )
        return RecordPage(tuple(self._row(r) for r in rows), total, query.page, query.page_size)

    def find_ready_by_sha256(self, sha256: str) -> FileRecord | None:
        rows = self._query(
            "select * from user_files where user_id = ? and sha256 = ? and status = 'ready' "
            "order by created_at desc limit 1",
            (self.user_id, sha256),
        )
        return self._row(rows[0]) if rows else None

    def delete(self, record_id: str) -> None:
        rows = self._query("delete from user_files where id = ? and user_id = ? returning id",
                           (existing_record_id(record_id), self.user_id))
        if not rows:
            raise not_found()

    def usage(self) -> UsageSummary:
        combos, subjects, largest = self._read_together(
            (_SQLITE_USAGE, (self.user_id,)),
            (_SQLITE_USAGE_BY_SUBJECT, (self.user_id,)),
            ("select * from user_files where user_id = ? and status = 'ready' "
             "order by size_bytes desc, id limit ?", (self.user_id, LARGEST_COUNT)),
        )
        combos = [dict(r) for r in combos]
        return UsageSummary(
            total_bytes=sum(int(c["bytes"]) for c in combos),
            total_count=sum(int(c["count"]) for c in combos),
            by_month=tuple(sorted(_rollup(combos, "month"), key=lambda b: b.label)),
            by_content_type=_by_size(_rollup(combos, "content_type")),
            by_lossless=_by_size(_rollup(combos, "lossless_label")),
            by_subject=_by_size(_rollup([dict(r) for r in subjects], "subject")),
            largest=tuple(self._row(r) for r in largest),
        )

    def _read_together(self, *queries: tuple[str, tuple[Any, ...]]) -> list[list[sqlite3.Row]]:
        """Several reads in one transaction, so the figures they give agree with each other."""
        conn = self._connect()
        try:
            conn.execute("begin")
            results = [conn.execute(sql, params).fetchall() for sql, params in queries]
            conn.execute("commit")
            return results
        except sqlite3.Error as exc:
            raise MetadataError(f"The demo database refused the request: {exc}") from exc
        finally:
            conn.close()


def _rollup(combos: list[dict[str, Any]], dimension: str) -> list[UsageBucket]:
    totals: dict[str, list[int]] = {}
    for combo in combos:
        bucket = totals.setdefault(str(combo[dimension]), [0, 0])
        bucket[0] += int(combo["bytes"])
        bucket[1] += int(combo["count"])
    return [UsageBucket(label, size, count) for label, (size, count) in totals.items()]


def _by_size(buckets: list[UsageBucket]) -> tuple[UsageBucket, ...]:
    """Largest first, then by label: the order sql/002_usage.sql returns."""
    return tuple(sorted(buckets, key=lambda b: (-b.bytes, b.label)))


def _sqlite_integrity_error(exc: sqlite3.IntegrityError) -> MetadataError:
    text = str(exc)
    if "UNIQUE" in text and "s3_key" in text:
        return MetadataError("A recording with that storage key already exists.")
    if "UNIQUE" in text:
        return MetadataError("That recording already exists.")
    if "CHECK" in text and "recordings/" in text:
        return KeyOwnershipError("That storage key does not belong to your account.")
    return MetadataError(f"The recording's metadata was refused: {text}")
