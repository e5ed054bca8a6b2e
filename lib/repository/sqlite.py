"""Demo-mode metadata: ``SqliteRepository`` (the user's reads and research edits),
``SqliteServerRecords`` (the server's writes) and their schema, one local SQLite file.

The schema mirrors ``public.user_files`` in ``sql/`` column for column
(tests/sql/test_schema_agreement.py fails when they drift) and its rules: the
same key layout check (``lib.keys.check_record_key``, registered as a SQL
function), a reservation that never grows, and a quota reservation that sums
and inserts in one write transaction. The queries mirror what row-level
security and the column grants enforce in the cloud: every statement is limited
to the store's own user, and the user-side class changes research columns only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lib.errors import KeyOwnershipError, MetadataError, MetadataUnavailable
from lib.keys import check_record_key
from lib.records import (
    SEARCH_COLUMNS,
    FileRecord,
    ListQuery,
    NewRecord,
    RecordPage,
    Status,
    UsageBucket,
    UsageSummary,
    daily_history_start,
)
from lib.repository.base import (
    LARGEST_COUNT,
    RESEARCH_COLUMNS,
    FactUpdates,
    ResearchUpdates,
    check_query,
    day_start,
    existing_record_id,
    iso,
    like_pattern,
    new_row_values,
    not_found,
    quota_exceeded,
    record_from_row,
    storable_text,
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
  check (recording_key_ok(s3_key, user_id, id, 'original')
         and (thumbnail_key is null or recording_key_ok(thumbnail_key, user_id, id, 'thumbnail'))
         and (preview_key is null or recording_key_ok(preview_key, user_id, id, 'preview'))
         and (ground_truth_key is null or recording_key_ok(ground_truth_key, user_id, id, 'ground_truth')))
);
create trigger if not exists user_files_reservation_holds
  before update of size_bytes on user_files
  when new.size_bytes > old.size_bytes
begin
  select raise(abort, 'a recording cannot hold more bytes than it reserved');
end;
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

_SQLITE_USAGE_BY_DAY = """
select substr(created_at, 1, 10) as day, sum(size_bytes + ground_truth_bytes) as bytes, count(*) as count
from user_files where user_id = ? and status = 'ready' and created_at >= ?
group by substr(created_at, 1, 10) order by day
"""
"""The recent days only (:func:`lib.records.daily_history_start`): a range scan of the created_at index."""


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions the schema's checks call; every connection that writes user_files needs them."""
    conn.create_function("recording_key_ok", 4, _recording_key_ok, deterministic=True)


def _recording_key_ok(key: str | None, user_id: str, record_id: str, kind: str) -> int:
    try:
        check_record_key(str(key), str(user_id), str(record_id), str(kind))
    except KeyOwnershipError:
        return 0
    return 1


class _SqliteStore:
    """One SQLite file and one user: connections, the schema, rows as FileRecords.

    One connection per call (cheap in SQLite), so the Streamlit script threads
    never share one; WAL lets readers run alongside the single writer.
    """

    def __init__(self, db_path: str | Path, user_id: str) -> None:
        self.db_path = str(db_path)
        self.user_id = str(user_id)
        self._ensure_schema()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.db_path!r}, user_id={self.user_id!r})"

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
        except sqlite3.Error as exc:
            raise MetadataUnavailable(f"The demo database cannot be opened: {exc}") from exc
        conn.row_factory = sqlite3.Row
        conn.execute("pragma busy_timeout = 10000")
        register_functions(conn)
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

    def _own_row(self, record_id: str) -> FileRecord:
        rows = self._query("select * from user_files where id = ? and user_id = ?",
                           (existing_record_id(record_id), self.user_id))
        if not rows:
            raise not_found()
        return self._row(rows[0])

    def _set(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        """Set columns on one of this user's rows; NotFound if it is not theirs."""
        values = {**values, "updated_at": iso(datetime.now(UTC))}
        assignments = ", ".join(f"{column} = ?" for column in values)
        rows = self._query(
            f"update user_files set {assignments} where id = ? and user_id = ? returning *",
            (*(_sqlite_value(v) for v in values.values()), existing_record_id(record_id), self.user_id),
        )
        if not rows:
            raise not_found()
        return self._row(rows[0])


class SqliteServerRecords(FactUpdates, _SqliteStore):
    """Demo mode's server-side writes for one user: the mirror of the service-role writes in the cloud."""

    def _update(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        return self._set(record_id, values)

    def rows_of(self, user_id: str) -> SqliteServerRecords:
        """Any user's rows (the demo's admin repairs them; lib.usage checks the caller is an admin first)."""
        return self if str(user_id) == self.user_id else SqliteServerRecords(self.db_path, user_id)

    def reserve(self, new: NewRecord, quota_bytes: int) -> FileRecord:
        """Insert a pending row if it fits the quota: sum and insert in one write transaction
        (``begin immediate``), so two reservations at once run one after the other."""
        now = iso(datetime.now(UTC))
        values = {**new_row_values(new, self.user_id), "created_at": now, "updated_at": now}
        conn = self._connect()
        try:
            conn.execute("begin immediate")
            held, pending = conn.execute(
                "select coalesce(sum(size_bytes + ground_truth_bytes), 0),"  # ground truth counts in the quota
                " coalesce(sum(case when status = 'pending' then size_bytes end), 0)"
                " from user_files where user_id = ? and status in ('ready', 'pending')", (self.user_id,)).fetchone()
            if held + values["size_bytes"] > quota_bytes:
                conn.execute("rollback")
                raise quota_exceeded(new.original_name, values["size_bytes"], held, pending, quota_bytes)
            row = conn.execute(
                f"insert into user_files ({', '.join(values)}) values ({', '.join('?' for _ in values)}) returning *",
                tuple(_sqlite_value(v) for v in values.values())).fetchone()
            conn.execute("commit")
            return self._row(row)
        except sqlite3.IntegrityError as exc:
            raise _sqlite_integrity_error(exc) from exc
        except sqlite3.Error as exc:
            raise MetadataError(f"The demo database refused the request: {exc}") from exc
        finally:
            conn.close()  # an open transaction is rolled back

    def get(self, record_id: str) -> FileRecord:
        return self._own_row(record_id)

    def delete(self, record_id: str) -> None:
        rows = self._query("delete from user_files where id = ? and user_id = ? returning id",
                           (existing_record_id(record_id), self.user_id))
        if not rows:
            raise not_found()


class SqliteRepository(ResearchUpdates, _SqliteStore):
    """Demo-mode metadata as the signed-in user: reads and research fields, limited to their rows."""

    def rows_of(self, user_id: str) -> SqliteRepository:
        """Any user's rows: the demo's one local file holds everyone's, and its admin runs it."""
        return self if str(user_id) == self.user_id else SqliteRepository(self.db_path, user_id)

    def _update_research(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        if set(values) - set(RESEARCH_COLUMNS):  # the column grants' mirror
            raise MetadataError("Only research fields can be changed here.")
        return self._set(record_id, values)

    def get(self, record_id: str) -> FileRecord:
        return self._own_row(record_id)

    def get_many(self, record_ids: list[str]) -> list[FileRecord]:
        """This user's rows among ``record_ids`` (ids of anyone else's, or none, are left out)."""
        ids = [existing_record_id(r) for r in record_ids]
        if not ids:
            return []
        rows = self._query(f"select * from user_files where user_id = ? and id in ({', '.join('?' for _ in ids)})",
                           (self.user_id, *ids))
        return [self._row(r) for r in rows]

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

    def usage(self) -> UsageSummary:
        combos, subjects, days, largest = self._read_together(
            (_SQLITE_USAGE, (self.user_id,)),
            (_SQLITE_USAGE_BY_SUBJECT, (self.user_id,)),
            (_SQLITE_USAGE_BY_DAY, (self.user_id, iso(day_start(daily_history_start())))),
            ("select * from user_files where user_id = ? and status = 'ready' "
             "order by size_bytes desc, id limit ?", (self.user_id, LARGEST_COUNT)),
        )
        combos = [dict(r) for r in combos]
        return UsageSummary(
            total_bytes=sum(int(c["bytes"]) for c in combos),
            total_count=sum(int(c["count"]) for c in combos),
            by_day=tuple(UsageBucket(str(d["day"]), int(d["bytes"]), int(d["count"])) for d in days),
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
    if "CHECK" in text and "recording_key_ok" in text:
        return KeyOwnershipError("That storage key does not belong to your account.")
    return MetadataError(f"The recording's metadata was refused: {text}")
