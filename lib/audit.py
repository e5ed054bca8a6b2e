"""The append-only audit trail: who did what to which recording or study, when, and from which client address.

The one home of its rules: the actions it records (:class:`AuditAction`), an entry (:class:`AuditEntry`), what a
caller writes (:class:`AuditEvent`, by an :class:`Actor` from the verified session), how the trail is filtered
(:class:`AuditFilter`) and exported (:func:`entries_csv`), and the rule that an action whose entry cannot be
written does not happen (:class:`AuditTrail`):

* an action that cannot be taken back (a presigned URL issued, objects deleted, an export handed out) writes its
  entry first, with :meth:`AuditTrail.before`: if that fails, nothing is signed or deleted;
* a database write (research fields, a re-analysis, a membership) is done first and its entry written right
  after, with :meth:`AuditTrail.after`: if the entry fails, the write is undone and the caller told so. The user's
  token and the service role cannot share one transaction (sql/008_audit.sql: only the server inserts entries).

Where entries are kept: ``lib.repository.sqlite_audit`` (demo mode) and ``lib.repository.supabase_audit``
(``public.audit_log``, sql/008_audit.sql), both append-only at the database.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Protocol

from lib.errors import AuditUnavailable, PulseVaultError, ValidationError
from lib.records import FileRecord, ResearchFields

logger = logging.getLogger(__name__)

MAX_ENTRIES = 5_000
"""The most entries one read returns (newest first); narrow the filter for older ones."""
MAX_DETAIL_CHARS = 20_000
"""An entry's detail as JSON text is at most this long (notes are the long part; longer ones are cut)."""
MAX_NOTES_CHARS = 2_000
"""Notes as an entry keeps them (before and after of an edit)."""


class AuditAction(StrEnum):
    """What an entry records (``public.audit_log.action`` checks the same list)."""

    VIEW = "view"
    """A playback URL was issued."""
    DOWNLOAD = "download"
    """A download URL of the original was issued."""
    SHARE = "share"
    """A share link was created (its expiry in the detail)."""
    EDIT_RESEARCH = "edit_research"
    """Research fields were edited (before and after in the detail)."""
    UPLOAD = "upload"
    """A recording was stored."""
    REANALYSE = "reanalyse"
    DELETE = "delete"
    EXPORT = "export"
    MEMBER_ADD = "member_add"
    MEMBER_REMOVE = "member_remove"
    MEMBER_ROLE = "member_role"
    ERASE = "erase"
    """Erased for good (consent withdrawn, or past the study's retention: the reason in the detail)."""
    MOVE = "move"
    """Moved between spaces with its objects: one entry in each space's trail, both spaces in the detail."""
    STUDY_DELETE = "study_delete"
    """A study was deleted (its name in the detail; its trail stays)."""
    CONSENT = "consent"
    """A recording's consent state or its date was changed (before and after in the detail)."""
    REDERIVE = "rederive"
    """Its preview and thumbnail are being made again by a batch job (written before the links to store them
    are issued)."""


ACTION_LABELS = {
    AuditAction.VIEW: "viewed (playback link)", AuditAction.DOWNLOAD: "downloaded (download link)",
    AuditAction.SHARE: "share link created", AuditAction.EDIT_RESEARCH: "research fields edited",
    AuditAction.UPLOAD: "uploaded", AuditAction.REANALYSE: "re-analysed", AuditAction.DELETE: "deleted",
    AuditAction.EXPORT: "exported", AuditAction.MEMBER_ADD: "member added",
    AuditAction.MEMBER_REMOVE: "member removed", AuditAction.MEMBER_ROLE: "role changed",
    AuditAction.ERASE: "erased", AuditAction.MOVE: "moved", AuditAction.STUDY_DELETE: "study deleted",
    AuditAction.CONSENT: "consent changed", AuditAction.REDERIVE: "preview and thumbnail regenerated",
}
"""How the page and the CSV name each action."""


@dataclass(frozen=True)
class Actor:
    """Who acts, from the verified session (never from input), and the client address the app saw."""

    user_id: str
    email: str
    address: str = ""


@dataclass(frozen=True)
class AuditEvent:
    """What happened, about which study (None: the personal space) and recording."""

    action: AuditAction
    study_id: str | None
    record_id: str | None = None
    subject_id: str = ""
    """The recording's subject id when it happened (kept: the recording may be edited or deleted later)."""
    detail: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def about(cls, action: AuditAction, record: FileRecord, **detail: Any) -> AuditEvent:
        """An event about one recording, with its name and the subject it was recorded from."""
        return cls(action, record.study_id, record.id, record.research.subject_id,
                   {"name": record.original_name, **detail})


@dataclass(frozen=True)
class AuditEntry:
    """One written entry, as a reader sees it."""

    id: int
    at: datetime
    actor_id: str
    actor_email: str
    study_id: str | None
    record_id: str | None
    subject_id: str
    action: AuditAction
    detail: Mapping[str, Any]
    client_address: str


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to read: one study's (None: the caller's personal space), narrowed by recording, subject,
    person, actions and a date range (both days included)."""

    study_id: str | None
    record_id: str | None = None
    subject_id: str = ""
    """The recordings' subject id, exactly ("who has seen subject 12's recordings")."""
    actor_id: str | None = None
    actions: tuple[AuditAction, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    limit: int = MAX_ENTRIES


class AuditLog(Protocol):
    """Where entries are kept: written by the server, read as the signed-in user (``user_id``)."""

    user_id: str

    def append(self, actor: Actor, *events: AuditEvent) -> None:
        """Write the entries of ``events`` together (all or none); a failure raises (a PulseVaultError)."""
        ...


    def entries(self, where: AuditFilter) -> list[AuditEntry]:
        """The entries the user may read (a study's owners: the study's; anyone: their personal space's)."""
        ...


@dataclass(frozen=True)
class AuditTrail:
    """The trail as one signed-in session writes it: the log and who acts."""

    log: AuditLog
    actor: Actor

    def before(self, event: AuditEvent, *, also: tuple[AuditEvent, ...] = ()) -> None:
        """Write the entry of an action about to happen that cannot be taken back (with the entries ``also``, in
        other trails, all or none); AuditUnavailable (and the action must not happen) if it cannot be written."""
        try:
            self.log.append(self.actor, event, *also)
        except PulseVaultError as exc:
            logger.warning("audit: %s by %s not written (%s); the action is refused", event.action.value,
                        self.actor.user_id, type(exc).__name__)
            raise AuditUnavailable(MSG_NOT_WRITTEN.format(action=ACTION_LABELS[event.action])) from exc

    def after(self, event: AuditEvent, undo: Callable[[], object], *, also: tuple[AuditEvent, ...] = ()) -> None:
        """Write the entry of a database write just done (with ``also``, as :meth:`before`); if it cannot be
        written, ``undo`` the write and raise AuditUnavailable."""
        try:
            self.before(event, also=also)
        except AuditUnavailable:
            try:
                undo()
            except PulseVaultError as exc:  # both stores failing at once: say so in the log, loudly
                logger.error("audit: %s by %s could neither be recorded nor undone (%s)", event.action.value,
                          self.actor.user_id, type(exc).__name__)
            raise


MSG_NOT_WRITTEN = ("Nothing was done: the audit trail could not be written, and this action ({action}) is "
                   "recorded there first. Try again shortly; if it keeps failing, ask the administrator.")
"""An action refused because its audit entry could not be written."""


def research_change(before: ResearchFields, after: ResearchFields) -> dict[str, Any]:
    """The detail of a research edit: each changed field, before and after."""
    old, new = _research_values(before), _research_values(after)
    return {"changed": {name: {"before": old[name], "after": new[name]} for name in old if old[name] != new[name]}}


def _research_values(research: ResearchFields) -> dict[str, Any]:
    return {"subject_id": research.subject_id, "session_label": research.session_label,
            "notes": research.notes[:MAX_NOTES_CHARS], "tags": list(research.tags)}


def detail_json(detail: Mapping[str, Any]) -> str:
    """An entry's detail as the stores keep it: a JSON object of bounded size."""
    text = json.dumps(dict(detail), ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > MAX_DETAIL_CHARS:
        return json.dumps({"truncated": text[:MAX_DETAIL_CHARS]}, ensure_ascii=False)
    return text


def check_filter(where: AuditFilter) -> None:
    if where.date_from and where.date_to and where.date_from > where.date_to:
        raise ValidationError("The start date is after the end date.")
    if not 1 <= where.limit <= MAX_ENTRIES:
        raise ValidationError(f"Between 1 and {MAX_ENTRIES} entries are read at a time.")


def entry_from_row(row: dict[str, Any]) -> AuditEntry:
    """An AuditEntry from a row as either store returns it (the detail as JSON text or already decoded)."""
    detail = row.get("detail") or {}
    return AuditEntry(
        id=int(row["id"]), at=parse_time(row["at"]), actor_id=str(row["actor_id"]),
        actor_email=row.get("actor_email") or "",
        study_id=None if row.get("study_id") is None else str(row["study_id"]),
        record_id=None if row.get("record_id") is None else str(row["record_id"]),
        subject_id=row.get("subject_id") or "", action=AuditAction(row["action"]),
        detail=json.loads(detail) if isinstance(detail, str) else dict(detail),
        client_address=row.get("client_address") or "")


def parse_time(value: str | datetime) -> datetime:
    """A stored time (ISO text or a datetime) as an aware UTC datetime."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


CSV_COLUMNS = ("at", "action", "actor_email", "actor_id", "client_address", "study_id", "record_id",
               "recording", "subject_id", "detail")
"""The columns of the trail's CSV export, in order."""


def entries_csv(entries: Iterable[AuditEntry]) -> bytes:
    """UTF-8 CSV with a header row: one line per entry, the detail as JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        writer.writerow([e.at.isoformat(), e.action.value, e.actor_email, e.actor_id, e.client_address,
                         e.study_id or "", e.record_id or "", str(e.detail.get("name", "")), e.subject_id,
                         json.dumps(dict(e.detail), ensure_ascii=False, sort_keys=True)])
    return buffer.getvalue().encode("utf-8")


def describe(entry: AuditEntry) -> str:
    """The detail in a few words, for the page's table."""
    detail = entry.detail
    if entry.action is AuditAction.SHARE and "expires_at" in detail:
        return f"link works until {detail['expires_at']}"
    if entry.action in {AuditAction.EDIT_RESEARCH, AuditAction.CONSENT}:
        changed = detail.get("changed") or {}
        return "; ".join(f"{name}: {_short(v.get('before'))} → {_short(v.get('after'))}"
                         for name, v in changed.items())
    if entry.action in {AuditAction.MEMBER_ADD, AuditAction.MEMBER_REMOVE, AuditAction.MEMBER_ROLE}:
        role = (f"{detail.get('role_before')} → {detail.get('role')}" if "role_before" in detail
                else str(detail.get("role", "")))
        return f"{detail.get('member_email', '')} ({role})"
    if entry.action is AuditAction.EXPORT and "files" in detail:
        return f"{detail.get('layout', '')} {detail.get('delivery', '')}: {_short(detail['files'])}"
    if entry.action is AuditAction.MOVE:
        return f"from {detail.get('from_name', '')} to {detail.get('to_name', '')}"
    return ", ".join(f"{k}: {_short(v)}" for k, v in detail.items() if k != "name")


def _short(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= 60 else text[:59] + "…"
