"""Cloud mode's audit trail: ``public.audit_log`` (sql/008_audit.sql) through PostgREST.

Entries are written with the server's service-role client (the only role granted insert, so a user's token cannot
forge one) and read with the signed-in user's own client, so row-level security decides what they read: a study's
owners its entries, a user their personal space's.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from postgrest import SyncPostgrestClient
from postgrest.types import ReturnMethod

from lib.audit import (
    Actor,
    AuditAction,
    AuditEntry,
    AuditEvent,
    AuditFilter,
    check_filter,
    detail_json,
    entry_from_row,
)
from lib.repository.base import day_start, existing_record_id, existing_study_id, iso, storable_text
from lib.repository.supabase import PostgrestRows

TABLE = "audit_log"


class SupabaseAuditLog(PostgrestRows):
    """``public.audit_log``: written by the service role, read as ``user_id`` (their JWT in ``user_client``)."""

    def __init__(self, service_client: SyncPostgrestClient, user_client: Any, user_id: str) -> None:
        self._service = service_client
        self._client = user_client
        self.user_id = str(user_id)

    def __repr__(self) -> str:
        return f"SupabaseAuditLog(user_id={self.user_id!r})"

    def append(self, actor: Actor, *events: AuditEvent) -> None:
        # One insert of every row (one statement: all or none); the id and the time are the database's.
        rows = [_row(actor, event) for event in events]
        self._run(self._service.from_(TABLE).insert(rows, returning=ReturnMethod.minimal))

    def entries(self, where: AuditFilter) -> list[AuditEntry]:
        check_filter(where)
        builder = self._client.table(TABLE).select("*")
        if where.study_id is None:
            builder = builder.is_("study_id", "null").eq("actor_id", self.user_id)
        else:
            builder = builder.eq("study_id", existing_study_id(where.study_id))
        if where.record_id is not None:
            builder = builder.eq("record_id", existing_record_id(where.record_id))
        if where.actor_id is not None:
            builder = builder.eq("actor_id", str(where.actor_id))
        if subject := where.subject_id.strip():
            builder = builder.eq("subject_id", subject)
        if where.actions:
            builder = builder.in_("action", [AuditAction(a).value for a in where.actions])
        if where.date_from:
            builder = builder.gte("at", iso(day_start(where.date_from)))
        if where.date_to:
            builder = builder.lt("at", iso(day_start(where.date_to + timedelta(days=1))))
        rows = self._rows(builder.order("at", desc=True).order("id", desc=True).limit(where.limit))
        return [entry_from_row(r) for r in rows]


def _row(actor: Actor, event: AuditEvent) -> dict[str, Any]:
    """One entry's columns; the detail goes as a JSON object (jsonb)."""
    return {
        "actor_id": str(actor.user_id), "actor_email": storable_text(actor.email),
        "study_id": None if event.study_id is None else existing_study_id(event.study_id),
        "record_id": None if event.record_id is None else existing_record_id(event.record_id),
        "subject_id": storable_text(event.subject_id), "action": AuditAction(event.action).value,
        "detail": _json_object(event), "client_address": storable_text(actor.address),
    }


def _json_object(event: AuditEvent) -> dict[str, Any]:
    """The detail as the JSON object the stores keep (bounded, every value JSON-able)."""
    return json.loads(detail_json(event.detail))
