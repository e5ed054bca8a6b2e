"""Demo mode's audit trail: ``audit_log`` in the demo's SQLite file, the mirror of ``public.audit_log``
(sql/008_audit.sql; tests/sql/test_schema_agreement.py compares them).

The same rules as in the cloud: triggers refuse every update and delete (append-only), the server writes entries,
and a reader gets exactly what row-level security gives them there: a study's owners its entries, a user the
entries of their personal space.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from lib.audit import Actor, AuditAction, AuditEntry, AuditEvent, AuditFilter, check_filter, detail_json, entry_from_row
from lib.errors import MetadataUnavailable
from lib.repository.base import day_start, existing_record_id, existing_study_id, iso, storable_text
from lib.repository.sqlite import _SqliteStore

_ACTIONS = ", ".join(f"'{a.value}'" for a in AuditAction)

AUDIT_SQLITE_SCHEMA = f"""
create table if not exists audit_log (
  id             integer primary key autoincrement,
  at             text not null,
  actor_id       text not null,
  actor_email    text not null default '',
  study_id       text,
  record_id      text,
  subject_id     text not null default '',
  action         text not null check (action in ({_ACTIONS})),
  detail         text not null default '{{}}' check (json_type(detail) = 'object'),
  client_address text not null default ''
);
create index if not exists audit_log_study_at_idx on audit_log (study_id, at desc) where study_id is not null;
create index if not exists audit_log_personal_at_idx on audit_log (actor_id, at desc) where study_id is null;
-- sql/008_audit.sql: audit_log_append_only. Entries never change and never go.
create trigger if not exists audit_log_no_update before update on audit_log
begin
  select raise(abort, 'append_only');
end;
create trigger if not exists audit_log_no_delete before delete on audit_log
begin
  select raise(abort, 'append_only');
end;
"""


class SqliteAuditLog(_SqliteStore):
    """The audit trail in the demo's SQLite file, read as ``user_id``."""

    def _ensure_schema(self) -> None:
        super()._ensure_schema()
        conn = self._connect()
        try:
            conn.executescript(AUDIT_SQLITE_SCHEMA)
        except sqlite3.Error as exc:
            raise MetadataUnavailable(f"The demo's audit trail cannot be prepared: {exc}") from exc
        finally:
            conn.close()

    def append(self, actor: Actor, *events: AuditEvent) -> None:
        rows = [_row(actor, event) for event in events]
        self._write(*((f"insert into audit_log ({', '.join(r)}) values ({', '.join('?' for _ in r)})",
                       tuple(r.values())) for r in rows))

    def entries(self, where: AuditFilter) -> list[AuditEntry]:
        check_filter(where)
        clauses, params = self._readable(where.study_id)
        for column, value in (("record_id", where.record_id), ("actor_id", where.actor_id),
                              ("subject_id", where.subject_id.strip() or None)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(existing_record_id(value) if column == "record_id" else str(value))
        if where.actions:
            clauses.append(f"action in ({', '.join('?' for _ in where.actions)})")
            params += [AuditAction(a).value for a in where.actions]
        if where.date_from:
            clauses.append("at >= ?")
            params.append(iso(day_start(where.date_from)))
        if where.date_to:
            clauses.append("at < ?")
            params.append(iso(day_start(where.date_to + timedelta(days=1))))
        rows = self._query(f"select * from audit_log where {' and '.join(clauses)} order by at desc, id desc limit ?",
                           (*params, where.limit))
        return [entry_from_row(dict(r)) for r in rows]

    def _readable(self, study_id: str | None) -> tuple[list[str], list[Any]]:
        """sql/008_audit.sql's policy as a where clause: a study's entries for its owners, the personal space's
        for its user; a study the user does not own gives no rows."""
        if study_id is None:
            return ["study_id is null", "actor_id = ?"], [self.user_id]
        return (["study_id = ?", "exists (select 1 from study_members m where m.study_id = audit_log.study_id "
                 "and m.user_id = ? and m.role = 'owner')"], [existing_study_id(study_id), self.user_id])


def _row(actor: Actor, event: AuditEvent) -> dict[str, Any]:
    """One entry's columns as the demo's table keeps them."""
    return {
        "at": iso(datetime.now(UTC)), "actor_id": str(actor.user_id), "actor_email": storable_text(actor.email),
        "study_id": None if event.study_id is None else existing_study_id(event.study_id),
        "record_id": None if event.record_id is None else existing_record_id(event.record_id),
        "subject_id": storable_text(event.subject_id), "action": AuditAction(event.action).value,
        "detail": detail_json(event.detail), "client_address": storable_text(actor.address),
    }
