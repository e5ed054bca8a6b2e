"""Recording metadata: the ``FileRecord`` value, the ``Repository`` protocol and
its two implementations.

A repository is bound to ONE user, the signed-in one. ``SupabaseRepository``
sends every query with that user's JWT, so PostgreSQL row-level security (see
``sql/001_user_files.sql``) decides what they may see; ``SqliteRepository``
(demo mode) mirrors those rules in its own SQL. Either way another user's row
is indistinguishable from a missing one (``NotFound``) and a key outside the
user's prefix is refused (``KeyOwnershipError``).

Usage figures count ``ready`` rows only and are aggregated in the database.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from lib.errors import (
    AccessDenied,
    KeyOwnershipError,
    MetadataError,
    MetadataUnavailable,
    NotFound,
    SessionExpired,
    ValidationError,
)
from lib.keys import check_owner, user_prefix

MAX_PAGE_SIZE = 500
"""Largest page a list call returns: a table bigger than this is unreadable anyway."""
MAX_ERROR_CHARS = 2_000
"""Failure reasons are shown in a table cell; longer ones are cut."""
LARGEST_COUNT = 10
ITER_BATCH = 500

SORT_COLUMNS = frozenset(
    {"created_at", "updated_at", "original_name", "size_bytes", "duration_s", "subject_id",
     "session_label", "status", "content_type", "fps"}
)
"""Columns a list may be sorted by; anything else is refused, never interpolated."""
SEARCH_COLUMNS = ("original_name", "subject_id", "session_label", "notes")


class Status(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class ResearchFields:
    subject_id: str = ""
    session_label: str = ""
    notes: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class VideoProperties:
    duration_s: float
    fps: float
    width: int
    height: int
    frame_count: int
    codec: str
    lossless: bool
    browser_playable: bool
    bit_rate: int | None = None


@dataclass(frozen=True)
class NewRecord:
    id: str
    s3_key: str
    bucket: str
    original_name: str
    content_type: str
    size_bytes: int
    research: ResearchFields = field(default_factory=ResearchFields)
    sha256: str | None = None
    thumbnail_key: str | None = None
    preview_key: str | None = None
    video: VideoProperties | None = None


@dataclass(frozen=True)
class FileRecord:
    id: str
    user_id: str
    bucket: str
    s3_key: str
    original_name: str
    content_type: str
    size_bytes: int
    sha256: str | None
    status: Status
    error: str | None
    thumbnail_key: str | None
    preview_key: str | None
    ground_truth_key: str | None
    video: VideoProperties | None
    research: ResearchFields
    analysis: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @property
    def playback_key(self) -> str:
        """What a browser should play: the H.264 preview if there is one."""
        return self.preview_key or self.s3_key


@dataclass(frozen=True)
class ListQuery:
    text: str = ""
    statuses: tuple[Status, ...] = ()
    tags: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    lossless: bool | None = None
    sort: str = "created_at"
    descending: bool = True
    page: int = 1
    page_size: int = 50


@dataclass(frozen=True)
class RecordPage:
    records: tuple[FileRecord, ...]
    total: int
    page: int
    page_size: int

    @property
    def page_count(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True)
class UsageBucket:
    label: str
    bytes: int
    count: int


@dataclass(frozen=True)
class UsageSummary:
    total_bytes: int
    total_count: int
    by_month: tuple[UsageBucket, ...]
    by_content_type: tuple[UsageBucket, ...]
    by_lossless: tuple[UsageBucket, ...]
    by_subject: tuple[UsageBucket, ...]
    largest: tuple[FileRecord, ...]


class Repository(Protocol):
    """Metadata of the signed-in user's recordings. Other users' rows do not exist."""

    user_id: str

    def create_pending(self, new: NewRecord) -> FileRecord: ...
    def mark_ready(self, record_id: str, *, size_bytes: int, sha256: str | None,
                   video: VideoProperties | None, thumbnail_key: str | None, preview_key: str | None,
                   analysis: dict[str, Any] | None = None) -> FileRecord: ...
    def mark_failed(self, record_id: str, reason: str) -> FileRecord: ...
    def get(self, record_id: str) -> FileRecord: ...
    def list(self, query: ListQuery) -> RecordPage: ...
    def find_ready_by_sha256(self, sha256: str) -> FileRecord | None: ...
    def update_research(self, record_id: str, research: ResearchFields) -> FileRecord: ...
    def set_analysis(self, record_id: str, analysis: dict[str, Any] | None) -> FileRecord: ...
    def set_ground_truth_key(self, record_id: str, key: str | None) -> FileRecord: ...
    def delete(self, record_id: str) -> None: ...
    def usage(self) -> UsageSummary: ...
    def iter_all(self, statuses: tuple[Status, ...] = ()) -> Iterator[FileRecord]: ...


# --- shared rules ----------------------------------------------------------


def _owned_key(key: str, user_id: str) -> str:
    """The key, if it names an object under the user's prefix; the database checks this too."""
    if check_owner(key, user_id) == user_prefix(user_id):
        raise KeyOwnershipError("That storage key names a folder, not a file.")
    return key


def _owned_optional_key(key: str | None, user_id: str) -> str | None:
    return None if key is None else _owned_key(key, user_id)


def _record_id(record_id: str) -> str:
    """A canonical UUID string; anything else cannot name a record, so NotFound."""
    try:
        return str(uuid.UUID(str(record_id)))
    except ValueError:
        raise NotFound("That recording does not exist.") from None


def _new_record_id(record_id: str) -> str:
    try:
        return str(uuid.UUID(str(record_id)))
    except ValueError:
        raise ValidationError("A new recording needs a UUID as its id.") from None


def _not_found() -> NotFound:
    return NotFound("That recording does not exist (or is not yours).")


def _check_query(query: ListQuery) -> None:
    if query.sort not in SORT_COLUMNS:
        raise ValidationError(f"Cannot sort by {query.sort!r}.")
    if query.page < 1 or not 1 <= query.page_size <= MAX_PAGE_SIZE:
        raise ValidationError(f"Page must be ≥ 1 and page size between 1 and {MAX_PAGE_SIZE}.")
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise ValidationError("The start date is after the end date.")


def _like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere; ``*`` is a wildcard, ``%``/``_`` are literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.replace('*', '%')}%"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _parse_time(value: str | datetime) -> datetime:
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _video_columns(video: VideoProperties | None) -> dict[str, Any]:
    if video is None:
        return {}
    return {
        "duration_s": video.duration_s, "fps": video.fps, "width": video.width, "height": video.height,
        "frame_count": video.frame_count, "codec": video.codec, "lossless": video.lossless,
        "browser_playable": video.browser_playable, "bit_rate": video.bit_rate,
    }


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL (SQLite can): drop it so both stores agree.
    return value.replace("\x00", "")


def _research_columns(research: ResearchFields) -> dict[str, Any]:
    tags = tuple(dict.fromkeys(_text(t).strip() for t in research.tags if _text(t).strip()))
    return {"subject_id": _text(research.subject_id).strip(), "session_label": _text(research.session_label).strip(),
            "notes": _text(research.notes), "tags": list(tags)}


def _record_from_row(row: Mapping[str, Any]) -> FileRecord:
    """A FileRecord from a row as either store returns it (JSON already decoded)."""
    video = None
    if row.get("fps") is not None and row.get("duration_s") is not None:
        video = VideoProperties(
            duration_s=float(row["duration_s"]), fps=float(row["fps"]), width=int(row["width"] or 0),
            height=int(row["height"] or 0), frame_count=int(row["frame_count"] or 0),
            codec=row["codec"] or "", lossless=bool(row["lossless"]),
            browser_playable=bool(row["browser_playable"]),
            bit_rate=None if row.get("bit_rate") is None else int(row["bit_rate"]),
        )
    return FileRecord(
        id=str(row["id"]), user_id=str(row["user_id"]), bucket=row["bucket"], s3_key=row["s3_key"],
        original_name=row["original_name"], content_type=row["content_type"],
        size_bytes=int(row["size_bytes"]), sha256=row.get("sha256"), status=Status(row["status"]),
        error=row.get("error"), thumbnail_key=row.get("thumbnail_key"), preview_key=row.get("preview_key"),
        ground_truth_key=row.get("ground_truth_key"), video=video,
        research=ResearchFields(
            subject_id=row.get("subject_id") or "", session_label=row.get("session_label") or "",
            notes=row.get("notes") or "", tags=tuple(row.get("tags") or ()),
        ),
        analysis=row.get("analysis"),
        created_at=_parse_time(row["created_at"]), updated_at=_parse_time(row["updated_at"]),
    )


def _buckets(items: Any) -> tuple[UsageBucket, ...]:
    return tuple(UsageBucket(str(i["label"]), int(i["bytes"]), int(i["count"])) for i in items or ())


# --- SQLite (demo mode) ------------------------------------------------------

_SQLITE_SCHEMA = """
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
       sum(size_bytes) as bytes, count(*) as count
from user_files where user_id = ? and status = 'ready'
group by substr(created_at, 1, 7), content_type, lossless
"""
"""(month, type, lossless) combinations, at most a few hundred, from one ordered index scan;
the month, type and lossless breakdowns are summed from them (SQLite has no GROUPING SETS)."""

_SQLITE_USAGE_BY_SUBJECT = """
select case when subject_id = '' then '(none)' else subject_id end as subject,
       sum(size_bytes) as bytes, count(*) as count
from user_files where user_id = ? and status = 'ready'
group by subject_id
"""
"""Subjects on their own: folded into the combinations above they would multiply them."""


def _iso(moment: datetime) -> str:
    """Fixed-width UTC text, so string order is time order in SQLite."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


class _RowUpdates:
    """The updates both repositories express as "set these columns on my row".

    Subclasses provide ``user_id`` and ``_update(record_id, values)``, which
    refuses (NotFound) a row that is not the user's.
    """

    user_id: str

    def _update(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        raise NotImplementedError

    def mark_ready(self, record_id: str, *, size_bytes: int, sha256: str | None,
                   video: VideoProperties | None, thumbnail_key: str | None, preview_key: str | None,
                   analysis: dict[str, Any] | None = None) -> FileRecord:
        values: dict[str, Any] = {
            "status": Status.READY.value, "error": None, "size_bytes": size_bytes, "sha256": sha256,
            "thumbnail_key": _owned_optional_key(thumbnail_key, self.user_id),
            "preview_key": _owned_optional_key(preview_key, self.user_id), **_video_columns(video),
        }
        if analysis is not None:
            values["analysis"] = analysis
        return self._update(record_id, values)

    def mark_failed(self, record_id: str, reason: str) -> FileRecord:
        return self._update(record_id, {"status": Status.FAILED.value, "error": reason[:MAX_ERROR_CHARS]})

    def update_research(self, record_id: str, research: ResearchFields) -> FileRecord:
        return self._update(record_id, _research_columns(research))

    def set_analysis(self, record_id: str, analysis: dict[str, Any] | None) -> FileRecord:
        return self._update(record_id, {"analysis": analysis})

    def set_ground_truth_key(self, record_id: str, key: str | None) -> FileRecord:
        return self._update(record_id, {"ground_truth_key": _owned_optional_key(key, self.user_id)})

    def iter_all(self, statuses: tuple[Status, ...] = ()) -> Iterator[FileRecord]:
        yield from _iter_pages(self, statuses)


class SqliteRepository(_RowUpdates):
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
            conn.executescript(_SQLITE_SCHEMA)
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
        return _record_from_row(data)

    def _update(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        values = {**values, "updated_at": _iso(datetime.now(UTC))}
        assignments = ", ".join(f"{column} = ?" for column in values)
        rows = self._query(
            f"update user_files set {assignments} where id = ? and user_id = ? returning *",
            (*(_sqlite_value(v) for v in values.values()), _record_id(record_id), self.user_id),
        )
        if not rows:
            raise _not_found()
        return self._row(rows[0])

    def create_pending(self, new: NewRecord) -> FileRecord:
        _owned_key(new.s3_key, self.user_id)
        _owned_optional_key(new.thumbnail_key, self.user_id)
        _owned_optional_key(new.preview_key, self.user_id)
        now = _iso(datetime.now(UTC))
        values = {
            "id": _new_record_id(new.id), "user_id": self.user_id, "bucket": new.bucket, "s3_key": new.s3_key,
            "original_name": new.original_name, "content_type": new.content_type,
            "size_bytes": new.size_bytes, "sha256": new.sha256, "status": Status.PENDING.value,
            "thumbnail_key": new.thumbnail_key, "preview_key": new.preview_key,
            **_video_columns(new.video), **_research_columns(new.research),
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
                           (_record_id(record_id), self.user_id))
        if not rows:
            raise _not_found()
        return self._row(rows[0])

    def _where(self, query: ListQuery) -> tuple[str, list[Any]]:
        clauses, params = ["user_id = ?"], [self.user_id]
        if text := _text(query.text).strip():
            pattern = _like_pattern(text)
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
            params.append(_iso(_day_start(query.date_from)))
        if query.date_to:
            clauses.append("created_at < ?")
            params.append(_iso(_day_start(query.date_to + timedelta(days=1))))
        if query.lossless is not None:
            clauses.append("lossless = ?")
            params.append(int(query.lossless))
        return " and ".join(clauses), params

    def list(self, query: ListQuery) -> RecordPage:
        _check_query(query)
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
                           (_record_id(record_id), self.user_id))
        if not rows:
            raise _not_found()

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


def _iter_pages(repo: Repository, statuses: tuple[Status, ...]) -> Iterator[FileRecord]:
    """Every own row, oldest first, a page at a time so memory stays flat."""
    page = 1
    while True:
        result = repo.list(ListQuery(statuses=statuses, sort="created_at", descending=False,
                                     page=page, page_size=ITER_BATCH))
        yield from result.records
        if page * ITER_BATCH >= result.total or not result.records:
            return
        page += 1


# --- Supabase (cloud mode) ---------------------------------------------------

TABLE = "user_files"


class SupabaseRepository(_RowUpdates):
    """Metadata in Supabase's ``public.user_files``, queried as the signed-in user.

    ``client`` is a supabase-py client that already carries the user's session;
    the service-role key is never used here.
    """

    def __init__(self, client: Any, user_id: str) -> None:
        self._client = client
        self.user_id = str(user_id)

    def __repr__(self) -> str:
        return f"SupabaseRepository(user_id={self.user_id!r})"

    def _run(self, builder: Any) -> Any:
        """Execute a postgrest-py builder, translating every failure to lib.errors."""
        try:
            return builder.execute()
        except Exception as exc:
            raise _translate_supabase_error(exc) from exc

    def _rows(self, builder: Any) -> list[dict[str, Any]]:
        return list(self._run(builder).data or [])

    def _update(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        rows = self._rows(self._client.table(TABLE).update(dict(values)).eq("id", _record_id(record_id)))
        if not rows:
            raise _not_found()
        return _record_from_row(rows[0])

    def create_pending(self, new: NewRecord) -> FileRecord:
        _owned_key(new.s3_key, self.user_id)
        values = {
            "id": _new_record_id(new.id), "user_id": self.user_id, "bucket": new.bucket, "s3_key": new.s3_key,
            "original_name": new.original_name, "content_type": new.content_type,
            "size_bytes": new.size_bytes, "sha256": new.sha256, "status": Status.PENDING.value,
            "thumbnail_key": _owned_optional_key(new.thumbnail_key, self.user_id),
            "preview_key": _owned_optional_key(new.preview_key, self.user_id),
            **_video_columns(new.video), **_research_columns(new.research),
        }
        rows = self._rows(self._client.table(TABLE).insert(values))
        if not rows:
            raise MetadataError("The recording was not saved; please try again.")
        return _record_from_row(rows[0])

    def get(self, record_id: str) -> FileRecord:
        rows = self._rows(self._client.table(TABLE).select("*").eq("id", _record_id(record_id)).limit(1))
        if not rows:
            raise _not_found()
        return _record_from_row(rows[0])

    def list(self, query: ListQuery) -> RecordPage:
        _check_query(query)
        builder = self._client.table(TABLE).select("*", count="exact")
        builder = _apply_filters(builder, query)
        builder = builder.order(query.sort, desc=query.descending, nullsfirst=False)
        builder = builder.order("id", desc=query.descending)
        offset = (query.page - 1) * query.page_size
        result = self._run(builder.range(offset, offset + query.page_size - 1))
        records = tuple(_record_from_row(r) for r in result.data or [])
        total = result.count if result.count is not None else offset + len(records)
        return RecordPage(records, total, query.page, query.page_size)

    def find_ready_by_sha256(self, sha256: str) -> FileRecord | None:
        rows = self._rows(
            self._client.table(TABLE).select("*").eq("sha256", sha256).eq("status", Status.READY.value)
            .order("created_at", desc=True).limit(1)
        )
        return _record_from_row(rows[0]) if rows else None

    def delete(self, record_id: str) -> None:
        rows = self._rows(self._client.table(TABLE).delete().eq("id", _record_id(record_id)))
        if not rows:
            raise _not_found()

    def usage(self) -> UsageSummary:
        figures = self._run(self._client.rpc("usage_summary")).data or {}
        largest = self._rows(
            self._client.table(TABLE).select("*").eq("status", Status.READY.value)
            .order("size_bytes", desc=True).order("id").limit(LARGEST_COUNT)
        )
        return UsageSummary(
            total_bytes=int(figures.get("total_bytes") or 0),
            total_count=int(figures.get("total_count") or 0),
            by_month=_buckets(figures.get("by_month")),
            by_content_type=_buckets(figures.get("by_content_type")),
            by_lossless=_buckets(figures.get("by_lossless")),
            by_subject=_buckets(figures.get("by_subject")),
            largest=tuple(_record_from_row(r) for r in largest),
        )


def _postgrest_quote(value: str) -> str:
    """A value inside a PostgREST ``or=(...)`` list: quoted so commas/parens are literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _apply_filters(builder: Any, query: ListQuery) -> Any:
    if text := _text(query.text).strip():
        # PostgREST spells LIKE's % as *; the escaped % and _ stay literal.
        pattern = _postgrest_quote(_like_pattern(text).replace("%", "*").replace("\\*", "\\%"))
        builder = builder.or_(",".join(f"{column}.ilike.{pattern}" for column in SEARCH_COLUMNS))
    if query.statuses:
        builder = builder.in_("status", [Status(s).value for s in query.statuses])
    if query.tags:
        builder = builder.contains("tags", list(query.tags))
    if query.date_from:
        builder = builder.gte("created_at", _iso(_day_start(query.date_from)))
    if query.date_to:
        builder = builder.lt("created_at", _iso(_day_start(query.date_to + timedelta(days=1))))
    if query.lossless is not None:
        builder = builder.eq("lossless", query.lossless)
    return builder


_PG_CODES: dict[str, tuple[type[MetadataError] | type[AccessDenied], str]] = {
    "42501": (AccessDenied, "You are not allowed to do that with this recording."),
    "23505": (MetadataError, "A recording with that storage key already exists."),
    "23503": (AccessDenied, "Your account was not found; please sign in again."),
    "22P02": (MetadataError, "The metadata service rejected a malformed value."),
    "23502": (MetadataError, "A required field of the recording is missing."),
}


def _translate_supabase_error(exc: Exception) -> Exception:
    """postgrest/httpx failures as lib.errors, with messages a researcher can act on."""
    import httpx
    from postgrest.exceptions import APIError

    if isinstance(exc, httpx.TransportError):
        return MetadataUnavailable("The metadata service (Supabase) could not be reached; try again shortly.")
    if not isinstance(exc, APIError):
        return MetadataError(f"The metadata service failed: {type(exc).__name__}")
    code = str(exc.code or "")
    message = str(exc.message or "")
    if code in {"PGRST301", "PGRST302", "PGRST303"} or "JWT expired" in message:
        return SessionExpired("Your session has expired; please sign in again.")
    if code == "23514":
        if "owner" in message:
            return KeyOwnershipError("That storage key does not belong to your account.")
        return MetadataError("The metadata service rejected a value of the recording.")
    if code in _PG_CODES:
        cls, text = _PG_CODES[code]
        return cls(text)
    if (code.isdigit() and int(code) >= 500) or code.startswith("08") or code in {"53300", "57P01"}:
        return MetadataUnavailable("The metadata service (Supabase) is unavailable; try again shortly.")
    return MetadataError(f"The metadata service refused the request ({code or 'unknown error'}).")
