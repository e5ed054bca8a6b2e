"""Where job rows are kept: ``public.jobs`` (``sql/007_jobs.sql``, ``sql/011_study_jobs.sql``) through PostgREST
in the cloud, the same table in the demo's SQLite file. Every store acts for ONE user (``user_id``, from the
verified session or the job row a driver took over) and names that user in every statement, like
``lib.repository.ServerRecords``: in the cloud its writes use the service role (a user's token may only read).

What a user reads follows the study's row-level security: their personal jobs, and every job over a study
they are a member of (any role). A job over a study is started by a member or owner (the database checks it
again) and cancelled by its creator or an owner of the study (:func:`lib.studies.may_cancel_job`).

A driver takes a job over with :meth:`claim`, one conditional update, so two drivers never run the same job;
it then writes results and a heartbeat (:meth:`save_progress`) and the ending (:meth:`finish`).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from lib.errors import AccessDenied, JobStateError, MetadataError, MetadataUnavailable, NotFound
from lib.jobs.model import (
    STALE_AFTER_S,
    ItemStatus,
    Job,
    JobKind,
    JobParameters,
    JobScope,
    JobStatus,
    check_move,
    counts,
    job_from_row,
    new_job_values,
)
from lib.repository.base import MAX_ERROR_CHARS, existing_study_id, iso, storable_text
from lib.repository.sqlite import SQLITE_SCHEMA, register_functions
from lib.studies import Role, may_cancel_job, role_of

TABLE = "jobs"
MEMBERS = "study_members"
MSG_NOT_MEMBER = ("Only a study's members and owners start jobs over its recordings (a job writes their analyses); "
                  "viewers cannot. Ask one of its owners for the member role.")
MSG_OUTSIDE_STUDY = "A job over a study covers only that study's recordings."
LIST_LIMIT = 50
"""How many of a user's newest jobs the Jobs page lists."""
UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING)

JOBS_SQLITE_SCHEMA = """
create table if not exists jobs (
  id              text primary key,
  user_id         text not null,
  study_id        text references studies (id) on delete cascade,
  owner_email     text not null default '',
  kind            text not null check (kind in ('reanalyse', 'evaluate', 'rederive')),
  parameters      text not null default '{}',
  fingerprint     text not null,
  record_ids      text not null,
  status          text not null default 'queued'
                  check (status in ('queued', 'running', 'cancelling', 'cancelled', 'finished', 'failed')),
  error           text,
  results         text not null default '{}',
  done_count      integer not null default 0 check (done_count >= 0),
  failed_count    integer not null default 0 check (failed_count >= 0),
  skipped_count   integer not null default 0 check (skipped_count >= 0),
  summary         text,
  driver_attempts integer not null default 0 check (driver_attempts >= 0),
  created_at      text not null,
  started_at      text,
  finished_at     text,
  heartbeat_at    text,
  updated_at      text not null
);
create index if not exists jobs_user_created_idx on jobs (user_id, created_at desc);
create index if not exists jobs_study_created_idx on jobs (study_id, created_at desc);
"""
"""``public.jobs`` column for column (tests/sql/test_schema_agreement.py checks it)."""


class JobStore(Protocol):
    """One user's jobs: what the Jobs page reads and the app server and a driver write."""

    user_id: str

    def create(self, kind: JobKind, parameters: JobParameters, record_ids: tuple[str, ...], *,
               study_id: str | None = None, owner_email: str = "") -> Job: ...
    def get(self, job_id: str) -> Job:
        """A job the user may read: their personal one, or one over a study they are a member of."""
        ...
    def own(self, job_id: str) -> Job:
        """The user's own job row as the server reads it (a driver), whatever their access to its study now."""
        ...
    def list(self, limit: int = LIST_LIMIT) -> list[Job]: ...
    def claim(self, job_id: str) -> Job: ...
    def save_progress(self, job: Job) -> Job: ...
    def finish(self, job: Job, status: JobStatus, *, error: str | None = None,
               summary: Mapping[str, Any] | None = None) -> Job: ...
    def request_cancel(self, job_id: str) -> Job:
        """Ask a job to stop: the creator's, or (an owner of its study) any over the study."""
        ...
    def current_digests(self, job_fingerprint: str, study_id: str | None = None) -> dict[str, str]:
        """record id → digest of the analysis the newest job with this fingerprint wrote, over the user's personal
        recordings or (``study_id``) the study's."""
        ...
    def for_user(self, user_id: str) -> JobStore: ...
    def unfinished(self) -> list[tuple[str, str]]: ...


def _job_id(job_id: str) -> str:
    try:
        return str(uuid.UUID(str(job_id)))
    except ValueError:
        raise NotFound("That job does not exist.") from None


def _not_found() -> NotFound:
    return NotFound("That job does not exist (or is not yours).")


def _already_driven() -> JobStateError:
    return JobStateError("That job is already being run by another driver, or it has ended.")


def _claim_values(job: Job, now: datetime) -> dict[str, Any]:
    target = JobStatus.CANCELLING if job.status is JobStatus.CANCELLING else JobStatus.RUNNING
    if target is JobStatus.RUNNING:
        check_move(job.status, JobStatus.RUNNING)
    return {"status": str(target), "heartbeat_at": iso(now), "driver_attempts": job.driver_attempts + 1,
            "started_at": iso(job.started_at or now)}


def _progress_values(job: Job, now: datetime) -> dict[str, Any]:
    return {"results": {k: v.to_json() for k, v in job.results.items()}, "heartbeat_at": iso(now),
            **counts(job.results)}


def _finish_values(job: Job, status: JobStatus, error: str | None, summary: Mapping[str, Any] | None,
                   now: datetime) -> dict[str, Any]:
    check_move(job.status, status)
    return {**_progress_values(job, now), "status": str(status), "finished_at": iso(now),
            "error": None if error is None else storable_text(error)[:MAX_ERROR_CHARS],
            "summary": None if summary is None else dict(summary)}


def _check_cancel(job: Job, role: Role | None, caller_id: str) -> None:
    if not may_cancel_job(job.study_id, role, creator_id=job.user_id, caller_id=caller_id):
        raise AccessDenied("Only the member who started this job, or an owner of its study, can cancel it.")


def _digests(jobs: list[Job]) -> dict[str, str]:
    """record id → digest of the analysis the newest of ``jobs`` wrote for it."""
    out: dict[str, str] = {}
    for job in sorted(jobs, key=lambda j: j.created_at):
        for record_id, result in job.results.items():
            if result.status is ItemStatus.DONE and result.digest:
                out[record_id] = result.digest
    return out


# --- SQLite (demo mode) --------------------------------------------------------------------------------


class SqliteJobs:
    """Demo mode's jobs, in the demo's SQLite file, for one user."""

    def __init__(self, db_path: str | Path, user_id: str) -> None:
        self.db_path = str(db_path)
        self.user_id = str(user_id)
        conn = self._connect()
        try:  # the studies' tables first: which study jobs a user reads is a question of membership
            conn.executescript(SQLITE_SCHEMA)
            conn.executescript(JOBS_SQLITE_SCHEMA)
        except sqlite3.Error as exc:
            raise MetadataUnavailable(f"The demo database cannot be prepared: {exc}") from exc
        finally:
            conn.close()

    def __repr__(self) -> str:
        return f"SqliteJobs({self.db_path!r}, user_id={self.user_id!r})"

    def for_user(self, user_id: str) -> SqliteJobs:
        return self if str(user_id) == self.user_id else SqliteJobs(self.db_path, user_id)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
        except sqlite3.Error as exc:
            raise MetadataUnavailable(f"The demo database cannot be opened: {exc}") from exc
        conn.row_factory = sqlite3.Row
        conn.execute("pragma busy_timeout = 10000")
        register_functions(conn)  # the studies' schema's checks call them
        return conn

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        conn = self._connect()
        try:
            return [self._decode(dict(r)) for r in conn.execute(sql, params).fetchall()]
        except sqlite3.Error as exc:
            raise MetadataError(f"The demo database refused the request: {exc}") from exc
        finally:
            conn.close()

    @staticmethod
    def _decode(row: dict[str, Any]) -> dict[str, Any]:
        for column in ("parameters", "record_ids", "results", "summary"):
            if column in row and row[column] is not None:
                row[column] = json.loads(row[column])
        return row

    def _update(self, job_id: str, values: Mapping[str, Any], condition: str = "",
                params: tuple[Any, ...] = ()) -> list[Job]:
        values = {**values, "updated_at": iso(datetime.now(UTC))}
        assignments = ", ".join(f"{c} = ?" for c in values)
        encoded = tuple(json.dumps(v) if isinstance(v, (dict, list)) else v for v in values.values())
        rows = self._query(f"update jobs set {assignments} where id = ? and user_id = ? {condition} returning *",
                           (*encoded, _job_id(job_id), self.user_id, *params))
        return [job_from_row(r) for r in rows]

    def _role_in(self, study_id: str) -> Role | None:
        rows = self._query("select role from study_members where study_id = ? and user_id = ?",
                           (existing_study_id(study_id), self.user_id))
        return role_of(rows[0]["role"]) if rows else None

    def _visible(self) -> tuple[str, tuple[Any, ...]]:
        """sql/011_study_jobs.sql's select policy as a where clause."""
        return ("((study_id is null and user_id = ?) or "
                "study_id in (select study_id from study_members where user_id = ?))", (self.user_id, self.user_id))

    def create(self, kind: JobKind, parameters: JobParameters, record_ids: tuple[str, ...], *,
               study_id: str | None = None, owner_email: str = "") -> Job:
        """The queued row; over a study only for its members and owners, and only over its recordings (the
        database's trigger in the cloud, sql/011_study_jobs.sql)."""
        now = iso(datetime.now(UTC))
        scope = JobScope(self.user_id, owner_email, None if study_id is None else existing_study_id(study_id))
        values = {**new_job_values(str(uuid.uuid4()), scope, kind, parameters, record_ids),
                  "created_at": now, "updated_at": now}
        if scope.study_id is not None:
            self._check_study_job(scope.study_id, values["record_ids"])
        encoded = tuple(json.dumps(v) if isinstance(v, (dict, list)) else v for v in values.values())
        rows = self._query(f"insert into jobs ({', '.join(values)}) values ({', '.join('?' for _ in values)}) "
                           "returning *", encoded)
        return job_from_row(rows[0])

    def _check_study_job(self, study_id: str, record_ids: list[str]) -> None:
        if self._role_in(study_id) not in (Role.MEMBER, Role.OWNER):
            raise AccessDenied(MSG_NOT_MEMBER)
        marks = ", ".join("?" for _ in record_ids)
        inside = self._query(f"select count(*) as n from user_files where study_id = ? and id in ({marks})",
                             (study_id, *record_ids))
        if inside[0]["n"] != len(record_ids):
            raise AccessDenied(MSG_OUTSIDE_STUDY)

    def get(self, job_id: str) -> Job:
        where, params = self._visible()
        rows = self._query(f"select * from jobs where id = ? and {where}", (_job_id(job_id), *params))
        if not rows:
            raise _not_found()
        return job_from_row(rows[0])

    def own(self, job_id: str) -> Job:
        rows = self._query("select * from jobs where id = ? and user_id = ?", (_job_id(job_id), self.user_id))
        if not rows:
            raise _not_found()
        return job_from_row(rows[0])

    def list(self, limit: int = LIST_LIMIT) -> list[Job]:
        where, params = self._visible()
        rows = self._query(f"select * from jobs where {where} order by created_at desc limit ?", (*params, limit))
        return [job_from_row(r) for r in rows]

    def claim(self, job_id: str) -> Job:
        job = self.own(job_id)
        now = datetime.now(UTC)
        stale = iso(now - timedelta(seconds=STALE_AFTER_S))
        claimed = self._update(job_id, _claim_values(job, now),
                               "and (status = 'queued' or (status in ('running', 'cancelling') and "
                               "(heartbeat_at is null or heartbeat_at < ?)))", (stale,))
        if not claimed:
            raise _already_driven()
        return claimed[0]

    def save_progress(self, job: Job) -> Job:
        saved = self._update(job.id, _progress_values(job, datetime.now(UTC)))
        if not saved:
            raise _not_found()
        return saved[0]

    def finish(self, job: Job, status: JobStatus, *, error: str | None = None,
               summary: Mapping[str, Any] | None = None) -> Job:
        saved = self._update(job.id, _finish_values(job, status, error, summary, datetime.now(UTC)))
        if not saved:
            raise _not_found()
        return saved[0]

    def request_cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        _check_cancel(job, None if job.study_id is None else self._role_in(job.study_id), self.user_id)
        creators = self.for_user(job.user_id)  # the right is checked: the row is its creator's
        queued = creators._update(job_id, {"status": str(JobStatus.CANCELLED),
                                           "finished_at": iso(datetime.now(UTC))}, "and status = 'queued'")
        if queued:
            return queued[0]
        running = creators._update(job_id, {"status": str(JobStatus.CANCELLING)}, "and status = 'running'")
        return running[0] if running else self.get(job_id)

    def current_digests(self, job_fingerprint: str, study_id: str | None = None) -> dict[str, str]:
        scope, param = ("study_id = ?", existing_study_id(study_id)) if study_id else ("user_id = ?", self.user_id)
        rows = self._query(f"select * from jobs where {scope} and fingerprint = ? and done_count > 0",
                           (param, job_fingerprint))
        return _digests([job_from_row(r) for r in rows])

    def unfinished(self) -> list[tuple[str, str]]:
        """(job id, owner) of every user's unfinished job, oldest first: what a driver may take over."""
        rows = self._query("select id, user_id from jobs where status in ('queued', 'running', 'cancelling') "
                           "order by created_at")
        return [(str(r["id"]), str(r["user_id"])) for r in rows]


# --- Supabase (cloud mode) ------------------------------------------------------------------------------


class SupabaseJobs:
    """Cloud mode's jobs in ``public.jobs``, for one user.

    ``reader`` runs the reads (the user's own client on a page, where row-level security decides; the
    service-role client in a driver); ``writer`` is the service-role client. Every statement names
    ``user_id`` either way.
    """

    def __init__(self, reader: Any, writer: Any, user_id: str) -> None:
        self._reader = reader
        self._writer = writer
        self.user_id = str(user_id)

    def __repr__(self) -> str:
        return f"SupabaseJobs(user_id={self.user_id!r})"

    def for_user(self, user_id: str) -> SupabaseJobs:
        """Another owner's jobs: a driver only, with the service role for both."""
        return self if str(user_id) == self.user_id else SupabaseJobs(self._writer, self._writer, user_id)

    def _rows(self, builder: Any) -> list[dict[str, Any]]:
        from lib.repository.supabase import _translate_supabase_error

        try:
            return list(builder.execute().data or [])
        except Exception as exc:
            raise _translate_supabase_error(exc) from exc

    def _table(self, client: Any, name: str) -> Any:
        return client.table(name) if hasattr(client, "table") else client.from_(name)

    def _role_in(self, study_id: str) -> Role | None:
        """This user's role in the study, asked of the server (the service role reads every membership)."""
        rows = self._rows(self._writer.from_(MEMBERS).select("role").eq("study_id", existing_study_id(study_id))
                          .eq("user_id", self.user_id))
        return role_of(rows[0]["role"]) if rows else None

    def _visible(self) -> Any:
        """The jobs this user reads (sql/011_study_jobs.sql's policy, named here for the service role too): their
        personal ones, and those of every study they are a member of."""
        studies = [r["study_id"] for r in self._rows(self._writer.from_(MEMBERS).select("study_id")
                                                     .eq("user_id", self.user_id))]
        personal = f"and(user_id.eq.{self.user_id},study_id.is.null)"
        either = f"{personal},study_id.in.({','.join(studies)})" if studies else personal
        return self._table(self._reader, TABLE).select("*").or_(either)

    def _update(self, job_id: str, values: Mapping[str, Any]) -> Any:
        return self._writer.from_(TABLE).update(dict(values)).eq("id", _job_id(job_id)).eq("user_id", self.user_id)

    def create(self, kind: JobKind, parameters: JobParameters, record_ids: tuple[str, ...], *,
               study_id: str | None = None, owner_email: str = "") -> Job:
        """The queued row; over a study only for its members and owners (checked here for the message, and by
        sql/011_study_jobs.sql's trigger, which also refuses a recording outside the study)."""
        scope = JobScope(self.user_id, owner_email, None if study_id is None else existing_study_id(study_id))
        values = new_job_values(str(uuid.uuid4()), scope, kind, parameters, record_ids)
        if scope.study_id is not None and self._role_in(scope.study_id) not in (Role.MEMBER, Role.OWNER):
            raise AccessDenied(MSG_NOT_MEMBER)
        rows = self._rows(self._writer.from_(TABLE).insert(values))
        if not rows:
            raise MetadataError("The job was not saved; please try again.")
        return job_from_row(rows[0])

    def get(self, job_id: str) -> Job:
        rows = self._rows(self._visible().eq("id", _job_id(job_id)).limit(1))
        if not rows:
            raise _not_found()
        return job_from_row(rows[0])

    def own(self, job_id: str) -> Job:
        rows = self._rows(self._writer.from_(TABLE).select("*").eq("id", _job_id(job_id))
                          .eq("user_id", self.user_id).limit(1))
        if not rows:
            raise _not_found()
        return job_from_row(rows[0])

    def list(self, limit: int = LIST_LIMIT) -> list[Job]:
        return [job_from_row(r) for r in self._rows(self._visible().order("created_at", desc=True).limit(limit))]

    def claim(self, job_id: str) -> Job:
        job = self.own(job_id)
        now = datetime.now(UTC)
        stale = iso(now - timedelta(seconds=STALE_AFTER_S))
        rows = self._rows(self._update(job_id, _claim_values(job, now))
                          .in_("status", [str(s) for s in UNFINISHED])
                          .or_(f"status.eq.queued,heartbeat_at.is.null,heartbeat_at.lt.{stale}"))
        if not rows:
            raise _already_driven()
        return job_from_row(rows[0])

    def save_progress(self, job: Job) -> Job:
        rows = self._rows(self._update(job.id, _progress_values(job, datetime.now(UTC))))
        if not rows:
            raise _not_found()
        return job_from_row(rows[0])

    def finish(self, job: Job, status: JobStatus, *, error: str | None = None,
               summary: Mapping[str, Any] | None = None) -> Job:
        rows = self._rows(self._update(job.id, _finish_values(job, status, error, summary, datetime.now(UTC))))
        if not rows:
            raise _not_found()
        return job_from_row(rows[0])

    def request_cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        _check_cancel(job, None if job.study_id is None else self._role_in(job.study_id), self.user_id)
        creators = SupabaseJobs(self._writer, self._writer, job.user_id)  # the right is checked: the creator's row
        now = iso(datetime.now(UTC))
        rows = self._rows(creators._update(job_id, {"status": str(JobStatus.CANCELLED), "finished_at": now})
                          .eq("status", str(JobStatus.QUEUED)))
        if not rows:
            rows = self._rows(creators._update(job_id, {"status": str(JobStatus.CANCELLING)})
                              .eq("status", str(JobStatus.RUNNING)))
        return job_from_row(rows[0]) if rows else self.get(job_id)

    def current_digests(self, job_fingerprint: str, study_id: str | None = None) -> dict[str, str]:
        builder = self._writer.from_(TABLE).select("*").eq("fingerprint", job_fingerprint).gt("done_count", 0)
        scoped = (builder.eq("study_id", existing_study_id(study_id)) if study_id
                  else builder.eq("user_id", self.user_id))
        return _digests([job_from_row(r) for r in self._rows(scoped)])

    def unfinished(self) -> list[tuple[str, str]]:
        rows = self._rows(self._writer.from_(TABLE).select("id,user_id")
                          .in_("status", [str(s) for s in UNFINISHED]).order("created_at"))
        return [(str(r["id"]), str(r["user_id"])) for r in rows]

