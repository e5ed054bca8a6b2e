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
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from lib.consent import MSG_ALREADY_WITHDRAWN, check_consent_change
from lib.errors import (
    AccessDenied,
    KeyOwnershipError,
    MetadataError,
    MetadataUnavailable,
    NotFound,
    PulseVaultError,
    ValidationError,
)
from lib.keys import check_record_key
from lib.records import (
    SEARCH_COLUMNS,
    Consent,
    ErasureReason,
    FileRecord,
    ListQuery,
    NewRecord,
    RecordPage,
    Status,
    Tombstone,
    UsageBucket,
    UsageSummary,
    daily_history_start,
)
from lib.repository.base import (
    DEFAULT_STUDY_QUOTA_BYTES,
    LARGEST_COUNT,
    RESEARCH_COLUMNS,
    FactUpdates,
    ResearchUpdates,
    check_delete,
    check_erasable,
    check_move,
    check_query,
    consent_date_value,
    day_start,
    derivative_columns,
    existing_record_id,
    existing_study_id,
    invite_from_row,
    iso,
    like_pattern,
    member_from_row,
    moved_key_columns,
    new_row_values,
    not_found,
    overview_from_row,
    quota_exceeded,
    record_from_row,
    require_job_role,
    require_member,
    retention_days,
    storable_text,
    study_from_row,
    study_quota_exceeded,
    tombstone_from_row,
    uploader_usage_from_row,
)
from lib.studies import (
    MSG_ALREADY_INVITED,
    MSG_ALREADY_MEMBER,
    MSG_INVITE_NOT_FOUND,
    MSG_LAST_OWNER,
    MSG_STUDY_NOT_EMPTY,
    MSG_STUDY_NOT_FOUND,
    ROLE_RANK,
    Action,
    Invite,
    Member,
    Role,
    Study,
    StudyOverview,
    UploaderUsage,
    invitee_email,
    role_of,
    study_description,
    study_name,
)

SQLITE_SCHEMA = """
create table if not exists studies (
  id             text primary key,
  name           text not null check (length(trim(name)) between 1 and 200),
  description    text not null default '' check (length(description) <= 5000),
  owner          text,
  retention_days integer check (retention_days is null or retention_days > 0),
  created_at     text not null
);
create table if not exists study_members (
  study_id  text not null references studies (id) on delete cascade,
  user_id   text not null,
  role      text not null check (role in ('owner', 'member', 'viewer')),
  added_at  text not null,
  primary key (study_id, user_id)
);
create index if not exists study_members_user_idx on study_members (user_id);
-- sql/010_study_ops.sql: addresses invited before any account has them.
create table if not exists study_invites (
  study_id   text not null references studies (id) on delete cascade,
  email      text not null check (email = lower(trim(email))),
  role       text not null check (role in ('owner', 'member', 'viewer')),
  invited_by text,
  invited_at text not null,
  primary key (study_id, email)
);
create index if not exists study_invites_email_idx on study_invites (email);
-- A study always keeps an owner (sql/005_studies.sql: study_members_keep_an_owner).
create trigger if not exists study_members_keep_an_owner_update
  before update of role on study_members
  when old.role = 'owner' and new.role <> 'owner' and not exists (
    select 1 from study_members m where m.study_id = old.study_id and m.role = 'owner' and m.user_id <> old.user_id)
begin
  select raise(abort, 'last_owner');
end;
create trigger if not exists study_members_keep_an_owner_delete
  before delete on study_members
  when old.role = 'owner' and exists (select 1 from studies s where s.id = old.study_id) and not exists (
    select 1 from study_members m where m.study_id = old.study_id and m.role = 'owner' and m.user_id <> old.user_id)
begin
  select raise(abort, 'last_owner');
end;
create table if not exists user_files (
  id               text primary key,
  user_id          text not null,
  study_id         text references studies (id),
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
  consent          text not null default 'internal' check (consent in ('internal', 'shareable', 'withdrawn')),
  consent_date     text,
  created_at       text not null,
  updated_at       text not null,
  check (recording_key_ok(s3_key, user_id, study_id, id, 'original')
         and (thumbnail_key is null or recording_key_ok(thumbnail_key, user_id, study_id, id, 'thumbnail'))
         and (preview_key is null or recording_key_ok(preview_key, user_id, study_id, id, 'preview'))
         and (ground_truth_key is null
              or recording_key_ok(ground_truth_key, user_id, study_id, id, 'ground_truth')))
);
-- sql/005_studies.sql: user_files_study_rules. Only a study's members upload into it; no row changes space.
create trigger if not exists user_files_study_upload
  before insert on user_files
  when new.study_id is not null and not exists (
    select 1 from study_members m where m.study_id = new.study_id and m.user_id = new.user_id
      and m.role in ('owner', 'member'))
begin
  select raise(abort, 'not_member');
end;
-- sql/012_moves.sql: a row changes space only in the move's own transaction, which marks it here first.
create table if not exists user_files_moving (
  id        text primary key,
  study_id  text
);
create trigger if not exists user_files_study_fixed
  before update of study_id on user_files
  when new.study_id is not old.study_id
    and not exists (select 1 from user_files_moving mv where mv.id = new.id and mv.study_id is new.study_id)
begin
  select raise(abort, 'a recording moves to another study or space only with its objects');
end;
create index if not exists user_files_study_created_idx on user_files (study_id, created_at desc);
-- sql/009_consent.sql: withdrawal is final; tombstones are never changed or removed.
create trigger if not exists user_files_withdrawal_final
  before update of consent on user_files
  when old.consent = 'withdrawn' and new.consent <> 'withdrawn'
begin
  select raise(abort, 'withdrawal_final');
end;
create table if not exists recording_tombstones (
  id          text primary key,
  study_id    text,
  subject_id  text not null default '',
  reason      text not null check (reason in ('withdrawn', 'retention')),
  erased_at   text not null,
  erased_by   text not null
);
create index if not exists recording_tombstones_study_idx on recording_tombstones (study_id, erased_at desc);
create trigger if not exists recording_tombstones_fixed_update before update on recording_tombstones
begin
  select raise(abort, 'a tombstone is never changed or removed');
end;
create trigger if not exists recording_tombstones_fixed_delete before delete on recording_tombstones
begin
  select raise(abort, 'a tombstone is never changed or removed');
end;
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

SQLITE_CLAIM_INVITES = """
create trigger if not exists demo_accounts_claim_study_invites
  after insert on demo_accounts
begin
  insert or ignore into study_members (study_id, user_id, role, added_at)
    select study_id, new.id, role, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') from study_invites where email = new.email;
  delete from study_invites where email = new.email;
end;
"""
"""sql/010_study_ops.sql's claim_study_invites: a new demo account (the demo confirms no address: it is a local
stand-in) joins every study that invited its address, in the statement that creates it. Made once the demo's
accounts table exists (lib.demo makes the accounts before any store)."""

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
    conn.create_function("recording_key_ok", 5, _recording_key_ok, deterministic=True)


def _recording_key_ok(key: str | None, user_id: str, study_id: str | None, record_id: str, kind: str) -> int:
    try:
        check_record_key(str(key), str(user_id), str(record_id), str(kind), None if study_id is None else str(study_id))
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
            if conn.execute("select 1 from sqlite_master where type = 'table' and name = 'demo_accounts'").fetchone():
                conn.executescript(SQLITE_CLAIM_INVITES)
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

    def _write(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        """Several writes in one transaction: all of them or none."""
        with self._immediate() as conn:
            for statement, params in statements:
                conn.execute(statement, params)

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, its lock taken at once (``begin immediate``: writers run one after the other):
        committed when the block ends, rolled back when it raises; the database's refusals in words."""
        conn = self._connect()
        try:
            conn.execute("begin immediate")
            yield conn
            conn.execute("commit")
        except sqlite3.IntegrityError as exc:
            raise _sqlite_integrity_error(exc) from exc
        except sqlite3.Error as exc:
            raise MetadataError(f"The demo database refused the request: {exc}") from exc
        finally:
            conn.close()  # an open transaction is rolled back

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

    def _set(self, record_id: str, values: Mapping[str, Any],
             scope: tuple[str, tuple[Any, ...]] | None = None) -> FileRecord:
        """Set columns on one row in ``scope`` (a where clause and its parameters; default: this user's
        own rows); NotFound if it is not in it."""
        where, params = scope or ("user_id = ?", (self.user_id,))
        values = {**values, "updated_at": iso(datetime.now(UTC))}
        assignments = ", ".join(f"{column} = ?" for column in values)
        rows = self._query(
            f"update user_files set {assignments} where id = ? and {where} returning *",
            (*(_sqlite_value(v) for v in values.values()), existing_record_id(record_id), *params),
        )
        if not rows:
            raise not_found()
        return self._row(rows[0])

    def _role_in(self, study_id: str) -> Role | None:
        """This user's role in the study (None: not a member)."""
        rows = self._query("select role from study_members where study_id = ? and user_id = ?",
                           (existing_study_id(study_id), self.user_id))
        return role_of(rows[0]["role"]) if rows else None

    def _visible(self, weakest: Role) -> tuple[str, tuple[Any, ...]]:
        """The rows this user reaches with at least ``weakest``'s rights: their personal ones, and those of
        the studies where they hold that role (sql/005_studies.sql's policies, as a where clause)."""
        roles = [r.value for r in Role if ROLE_RANK[r] >= ROLE_RANK[weakest]]
        return (f"(case when study_id is null then user_id = ? else exists (select 1 from study_members m "
                f"where m.study_id = user_files.study_id and m.user_id = ? "
                f"and m.role in ({', '.join('?' for _ in roles)})) end)", (self.user_id, self.user_id, *roles))


class SqliteServerRecords(FactUpdates, _SqliteStore):
    """Demo mode's server-side writes for one user: the mirror of the service-role writes in the cloud."""

    def _update(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        return self._set(record_id, values)

    def _update_uploaded_or_owned(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        return self._set(record_id, values, (
            "(user_id = ? or study_id in (select study_id from study_members where user_id = ? and role = 'owner'))",
            (self.user_id, self.user_id)))

    def rows_of(self, user_id: str) -> SqliteServerRecords:
        """Any user's rows (the demo's admin repairs them; lib.usage checks the caller is an admin first)."""
        return self if str(user_id) == self.user_id else SqliteServerRecords(self.db_path, user_id)

    def reserve(self, new: NewRecord, quota_bytes: int,
                study_quota_bytes: int = DEFAULT_STUDY_QUOTA_BYTES) -> FileRecord:
        """Insert a pending row if it fits the quotas (the uploader's; in a study also the study's): sum and
        insert in one write transaction (``begin immediate``), so two reservations at once run one after the
        other, as sql/010_study_ops.sql's locks make them in the cloud."""
        now = iso(datetime.now(UTC))
        values = {**new_row_values(new, self.user_id), "created_at": now, "updated_at": now}
        if values["study_id"] is not None:
            require_member(self._role_in(values["study_id"]), Action.UPLOAD)
        with self._immediate() as conn:
            _check_quotas(conn, new.original_name, values, quota_bytes, study_quota_bytes)
            row = conn.execute(
                f"insert into user_files ({', '.join(values)}) values ({', '.join('?' for _ in values)}) returning *",
                tuple(_sqlite_value(v) for v in values.values())).fetchone()
        return self._row(row)

    def get(self, record_id: str) -> FileRecord:
        return self._own_row(record_id)

    def study_role(self, study_id: str) -> Role | None:
        return self._role_in(study_id)

    def study_row(self, record_id: str, study_id: str) -> FileRecord:
        require_job_role(self._role_in(study_id))
        rows = self._query("select * from user_files where id = ? and study_id = ?",
                           (existing_record_id(record_id), existing_study_id(study_id)))
        if not rows:
            raise not_found()
        return self._row(rows[0])

    def set_study_analysis(self, record_id: str, study_id: str, analysis: dict[str, Any] | None) -> FileRecord:
        """One update whose condition is the membership itself (sql/011_study_jobs.sql's set_study_analysis)."""
        return self._set_study_row(record_id, study_id, {"analysis": analysis})

    def set_study_derivatives(self, record_id: str, study_id: str, thumbnail_key: str | None,
                              preview_key: str | None) -> FileRecord:
        record_id, study_id = existing_record_id(record_id), existing_study_id(study_id)
        return self._set_study_row(record_id, study_id, derivative_columns(self.user_id, record_id, study_id,
                                                                           thumbnail_key, preview_key))

    def _set_study_row(self, record_id: str, study_id: str, values: Mapping[str, Any]) -> FileRecord:
        study_id = existing_study_id(study_id)
        try:
            return self._set(record_id, values, (
                "study_id = ? and status = 'ready' and exists (select 1 from study_members m where m.study_id = ? "
                "and m.user_id = ? and m.role in ('member', 'owner'))", (study_id, study_id, self.user_id)))
        except NotFound:
            require_job_role(self._role_in(study_id))  # say which it was: the access, or the row
            raise

    def study_record_ids(self, study_id: str) -> list[str]:
        require_job_role(self._role_in(study_id))
        rows = self._query("select id from user_files where study_id = ? and status = 'ready' order by created_at",
                           (existing_study_id(study_id),))
        return [str(r["id"]) for r in rows]

    def _study_of(self, record_id: str) -> str | None:
        rows = self._query("select study_id from user_files where id = ? and user_id = ?",
                           (existing_record_id(record_id), self.user_id))
        if not rows:
            raise not_found()
        return rows[0]["study_id"]

    def delete(self, record_id: str) -> None:
        """Delete a row this user may delete (lib.studies.may_delete): their own, or one of a study they own."""
        record_id = existing_record_id(record_id)
        rows = self._query("select user_id, study_id from user_files where id = ?", (record_id,))
        if not rows:
            raise not_found()
        study_id = rows[0]["study_id"]
        role = None if study_id is None else self._role_in(study_id)
        check_delete(study_id, role, uploader_id=rows[0]["user_id"], caller_id=self.user_id)
        self._query("delete from user_files where id = ?", (record_id,))

    def move(self, record_id: str, study_id: str | None, keys: Mapping[str, str | None],
             study_quota_bytes: int = DEFAULT_STUDY_QUOTA_BYTES) -> FileRecord:
        """sql/012's move_recording: the rules, the target study's quota and the switch in one write transaction."""
        record = self._any_row(record_id)
        target = None if study_id is None else existing_study_id(study_id)
        check_move(record, (self._role_of(record.study_id), self._role_of(target)), target, self.user_id)
        columns = moved_key_columns(record, target, keys)
        with self._immediate() as conn:
            if target is not None:
                _check_room(conn, record, target, study_quota_bytes)
            conn.execute("insert into user_files_moving (id, study_id) values (?, ?)", (record.id, target))
            row = conn.execute(f"update user_files set study_id = ?, {', '.join(f'{c} = ?' for c in columns)}, "
                               "updated_at = ? where id = ? and status = 'ready' and study_id is ? returning *",
                               (target, *columns.values(), iso(datetime.now(UTC)), record.id,
                                record.study_id)).fetchone()
            conn.execute("delete from user_files_moving where id = ?", (record.id,))
            if row is None:  # moved or changed since it was read: nothing is committed
                raise not_found()
        return self._row(row)

    def _any_row(self, record_id: str) -> FileRecord:
        rows = self._query("select * from user_files where id = ?", (existing_record_id(record_id),))
        if not rows:
            raise not_found()
        return self._row(rows[0])

    def _role_of(self, study_id: str | None) -> Role | None:
        return None if study_id is None else self._role_in(study_id)

    def erase(self, record_id: str, reason: ErasureReason) -> Tombstone:
        """Delete the withdrawn row and write its tombstone in one transaction (sql/009's erase_recording)."""
        rows = self._query("select * from user_files where id = ?", (existing_record_id(record_id),))
        if not rows:
            raise not_found()
        record = self._row(rows[0])
        check_erasable(record, None if record.study_id is None else self._role_in(record.study_id), self.user_id)
        erased_at = iso(datetime.now(UTC))
        self._write(("insert into recording_tombstones (id, study_id, subject_id, reason, erased_at, erased_by) "
                     "values (?, ?, ?, ?, ?, ?)", (record.id, record.study_id, record.research.subject_id,
                                                   ErasureReason(reason).value, erased_at, self.user_id)),
                    ("delete from user_files where id = ?", (record.id,)))
        return Tombstone(id=record.id, study_id=record.study_id, subject_id=record.research.subject_id,
                         reason=ErasureReason(reason), erased_at=datetime.fromisoformat(erased_at),
                         erased_by=self.user_id)


class SqliteRepository(ResearchUpdates, _SqliteStore):
    """Demo-mode metadata as the signed-in user: reads and research fields, limited to their rows."""

    def rows_of(self, user_id: str) -> SqliteRepository:
        """Any user's rows: the demo's one local file holds everyone's, and its admin runs it."""
        return self if str(user_id) == self.user_id else SqliteRepository(self.db_path, user_id)

    def _update_research(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        if set(values) - set(RESEARCH_COLUMNS):  # the column grants' mirror
            raise MetadataError("Only research fields can be changed here.")
        return self._set(record_id, values, self._visible(Role.MEMBER))

    def set_consent(self, record_id: str, consent: Consent, consent_date: date | None) -> FileRecord:
        """sql/009's set_consent(): the uploader or a study owner sets internal or shareable, and its date."""
        record = self.get(record_id)
        check_consent_change(record, consent, None if record.study_id is None else self._role_in(record.study_id),
                             self.user_id)
        return self._set(record.id, {"consent": Consent(consent).value,
                                     "consent_date": consent_date_value(consent_date)}, ("1 = 1", ()))

    def tombstones(self, study_id: str | None) -> list[Tombstone]:
        """sql/009's policy as a query: a study's for its owners (NotFound for anyone else), the personal space's
        for the person who erased there."""
        if study_id is None:
            rows = self._query("select * from recording_tombstones where study_id is null and erased_by = ? "
                               "order by erased_at desc", (self.user_id,))
        else:
            require_member(self._role_in(study_id), Action.MANAGE_MEMBERS)
            rows = self._query("select * from recording_tombstones where study_id = ? order by erased_at desc",
                               (existing_study_id(study_id),))
        return [tombstone_from_row(dict(r)) for r in rows]

    def set_retention(self, study_id: str, days: int | None) -> Study:
        require_member(self._role_in(study_id), Action.MANAGE_MEMBERS)
        self._query("update studies set retention_days = ? where id = ?",
                    (retention_days(days), existing_study_id(study_id)))
        return self.study(study_id)

    def get(self, record_id: str) -> FileRecord:
        where, params = self._visible(Role.VIEWER)
        rows = self._query(f"select * from user_files where id = ? and {where}",
                           (existing_record_id(record_id), *params))
        if not rows:
            raise not_found()
        return self._row(rows[0])

    def get_many(self, record_ids: list[str]) -> list[FileRecord]:
        """The rows among ``record_ids`` this user may see (ids of anyone else's, or none, are left out)."""
        ids = [existing_record_id(r) for r in record_ids]
        if not ids:
            return []
        where, params = self._visible(Role.VIEWER)
        rows = self._query(f"select * from user_files where {where} and id in ({', '.join('?' for _ in ids)})",
                           (*params, *ids))
        return [self._row(r) for r in rows]

    def _space(self, study_id: str | None) -> tuple[str, list[Any]]:
        """The rows of a list: the user's personal space, or a study they are a member of (else NotFound)."""
        if study_id is None:
            return "user_id = ? and study_id is null", [self.user_id]
        if self._role_in(study_id) is None:
            raise NotFound(MSG_STUDY_NOT_FOUND)
        return "study_id = ?", [existing_study_id(study_id)]

    def _where(self, query: ListQuery) -> tuple[str, list[Any]]:
        space, params = self._space(query.study_id)
        clauses = [space]
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

    def find_ready_by_sha256(self, sha256: str, study_id: str | None = None) -> FileRecord | None:
        """The newest ready recording with these bytes in the space: the personal one, or a study's (any
        member's upload)."""
        space, params = self._space(study_id)
        rows = self._query(f"select * from user_files where {space} and sha256 = ? and status = 'ready' "
                           "order by created_at desc limit 1", (*params, sha256))
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

    # --- studies (sql/005_studies.sql's policies and functions, as queries limited to this user) ---

    def studies(self) -> list[Study]:
        rows = self._query("select s.*, m.role as my_role from studies s join study_members m on m.study_id = s.id "
                           "where m.user_id = ? order by lower(s.name), s.id", (self.user_id,))
        return [study_from_row(dict(r), r["my_role"]) for r in rows]

    def study(self, study_id: str) -> Study:
        rows = self._query("select s.*, m.role as my_role from studies s join study_members m on m.study_id = s.id "
                           "where m.user_id = ? and s.id = ?", (self.user_id, existing_study_id(study_id)))
        if not rows:
            raise NotFound(MSG_STUDY_NOT_FOUND)
        return study_from_row(dict(rows[0]), rows[0]["my_role"])

    def create_study(self, name: str, description: str = "") -> Study:
        """A new study owned by this user: the study and the owner's membership in one transaction."""
        study_id, now = str(uuid.uuid4()), iso(datetime.now(UTC))
        self._write(("insert into studies (id, name, description, owner, created_at) values (?, ?, ?, ?, ?)",
                     (study_id, study_name(name), study_description(description), self.user_id, now)),
                    ("insert into study_members (study_id, user_id, role, added_at) values (?, ?, 'owner', ?)",
                     (study_id, self.user_id, now)))
        return self.study(study_id)

    def members(self, study_id: str) -> list[Member]:
        require_member(self._role_in(study_id), Action.VIEW)
        rows = self._query(
            "select m.user_id, a.email, m.role, m.added_at from study_members m "
            "left join demo_accounts a on a.id = m.user_id where m.study_id = ?", (existing_study_id(study_id),))
        return sorted((member_from_row(dict(r)) for r in rows), key=lambda m: (-ROLE_RANK[m.role], m.email))

    def add_member(self, study_id: str, email: str, role: Role) -> Member | Invite:
        """Add the account with ``email`` (an owner only), or invite the address when no account has it yet:
        the account made with it joins (SQLITE_CLAIM_INVITES)."""
        require_member(self._role_in(study_id), Action.MANAGE_MEMBERS)
        email, study_id, role = invitee_email(email), existing_study_id(study_id), Role(role)
        found = self._query("select id from demo_accounts where email = ?", (email,))
        if not found:
            return self._invite(study_id, email, role)
        if self._query("select 1 from study_members where study_id = ? and user_id = ?",
                       (study_id, found[0]["id"])):
            raise ValidationError(MSG_ALREADY_MEMBER.format(email=email))
        self._write(("insert into study_members (study_id, user_id, role, added_at) values (?, ?, ?, ?)",
                     (study_id, found[0]["id"], role.value, iso(datetime.now(UTC)))))
        return next(m for m in self.members(study_id) if m.user_id == found[0]["id"])

    def _invite(self, study_id: str, email: str, role: Role) -> Invite:
        rows = self._query("insert into study_invites (study_id, email, role, invited_by, invited_at) "
                           "values (?, ?, ?, ?, ?) on conflict (study_id, email) do nothing returning *",
                           (study_id, email, role.value, self.user_id, iso(datetime.now(UTC))))
        if not rows:
            raise ValidationError(MSG_ALREADY_INVITED.format(email=email))
        return invite_from_row(dict(rows[0]))

    def invites(self, study_id: str) -> list[Invite]:
        """The study's pending invitations (its owners only)."""
        require_member(self._role_in(study_id), Action.MANAGE_MEMBERS)
        rows = self._query("select * from study_invites where study_id = ? order by invited_at, email",
                           (existing_study_id(study_id),))
        return [invite_from_row(dict(r)) for r in rows]

    def cancel_invite(self, study_id: str, email: str) -> None:
        require_member(self._role_in(study_id), Action.MANAGE_MEMBERS)
        if not self._query("delete from study_invites where study_id = ? and email = ? returning email",
                           (existing_study_id(study_id), invitee_email(email))):
            raise NotFound(MSG_INVITE_NOT_FOUND)

    def study_usage(self) -> list[UploaderUsage]:
        rows = self._query(
            "select f.study_id, f.user_id, sum(f.size_bytes + f.ground_truth_bytes) as bytes, count(*) as recordings "
            "from user_files f join study_members m on m.study_id = f.study_id and m.user_id = ? "
            "where f.status = 'ready' group by f.study_id, f.user_id", (self.user_id,))
        return [uploader_usage_from_row(dict(r)) for r in rows]

    def admin_studies(self) -> list[StudyOverview]:
        """Every study in the demo's file (lib.usage lets only an administrator ask)."""
        rows = self._query(
            "select s.id as study_id, s.name, a.email as owner_email, s.created_at,"
            " (select count(*) from study_members m where m.study_id = s.id) as members,"
            " (select coalesce(sum(f.size_bytes + f.ground_truth_bytes), 0) from user_files f"
            "   where f.study_id = s.id and f.status = 'ready') as bytes,"
            " (select count(*) from user_files f where f.study_id = s.id and f.status = 'ready') as recordings "
            "from studies s left join demo_accounts a on a.id = s.owner order by lower(s.name), s.id")
        return [overview_from_row(dict(r)) for r in rows]

    def set_role(self, study_id: str, user_id: str, role: Role) -> None:
        require_member(self._role_in(study_id), Action.MANAGE_MEMBERS)
        changed = self._query("update study_members set role = ? where study_id = ? and user_id = ? returning user_id",
                              (Role(role).value, existing_study_id(study_id), str(user_id)))
        if not changed:
            raise NotFound("That person is not a member of this study.")

    def remove_member(self, study_id: str, user_id: str) -> None:
        """Remove a member (an owner), or leave the study (anyone, for themselves)."""
        if str(user_id) != self.user_id:
            require_member(self._role_in(study_id), Action.MANAGE_MEMBERS)
        removed = self._query("delete from study_members where study_id = ? and user_id = ? returning user_id",
                              (existing_study_id(study_id), str(user_id)))
        if not removed:
            raise NotFound("That person is not a member of this study.")

    def delete_study(self, study_id: str) -> None:
        """Delete an empty study and its memberships (an owner only)."""
        study = self.study(study_id)
        require_member(study.role, Action.MANAGE_MEMBERS)
        if self._query("select 1 from user_files where study_id = ? limit 1", (study.id,)):
            raise ValidationError(MSG_STUDY_NOT_EMPTY.format(name=study.name))
        self._write(("delete from studies where id = ?", (study.id,)),
                    ("delete from study_members where study_id = ?", (study.id,)),
                    ("delete from study_invites where study_id = ?", (study.id,)))

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


_HELD = ("select coalesce(sum(size_bytes + ground_truth_bytes), 0),"  # ground truth counts in the quota
         " coalesce(sum(case when status = 'pending' then size_bytes end), 0)"
         " from user_files where {space} = ? and status in ('ready', 'pending')")
"""What a space holds against its quota (sql/003_trust.sql's and sql/010_study_ops.sql's sum): held, pending."""


def _check_quotas(conn: sqlite3.Connection, name: str, values: Mapping[str, Any], quota_bytes: int,
                  study_quota_bytes: int) -> None:
    """QuotaExceeded if the new row does not fit the study's quota (first, as in the cloud) or the uploader's;
    run inside the reserving transaction."""
    size = int(values["size_bytes"])
    if values["study_id"] is not None:
        held, pending = conn.execute(_HELD.format(space="study_id"), (values["study_id"],)).fetchone()
        if held + size > study_quota_bytes:
            raise study_quota_exceeded(name, size, held, pending, study_quota_bytes)
    held, pending = conn.execute(_HELD.format(space="user_id"), (values["user_id"],)).fetchone()
    if held + size > quota_bytes:
        raise quota_exceeded(name, size, held, pending, quota_bytes)


def _check_room(conn: sqlite3.Connection, record: FileRecord, study_id: str, study_quota_bytes: int) -> None:
    """QuotaExceeded unless the study has room for ``record`` and its ground truth (sql/012's rule)."""
    held, pending = conn.execute(_HELD.format(space="study_id"), (study_id,)).fetchone()
    size = record.size_bytes + record.ground_truth_bytes
    if held + size > study_quota_bytes:
        raise study_quota_exceeded(record.original_name, size, held, pending, study_quota_bytes)


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


def _sqlite_integrity_error(exc: sqlite3.IntegrityError) -> PulseVaultError:
    text = str(exc)
    if "UNIQUE" in text and "s3_key" in text:
        return MetadataError("A recording with that storage key already exists.")
    if "UNIQUE" in text:
        return MetadataError("That recording already exists.")
    if "CHECK" in text and "recording_key_ok" in text:
        return KeyOwnershipError("That storage key does not belong to your account.")
    if "withdrawal_final" in text:
        return ValidationError(MSG_ALREADY_WITHDRAWN)
    if "last_owner" in text:
        return ValidationError(MSG_LAST_OWNER)
    if "not_member" in text:
        return AccessDenied("Only a study's members and owners upload into it.")
    return MetadataError(f"The recording's metadata was refused: {text}")
