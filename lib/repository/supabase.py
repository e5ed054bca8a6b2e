"""Cloud-mode metadata on ``public.user_files`` through PostgREST: ``SupabaseRepository`` (the
user's reads and research edits) and ``SupabaseServerRecords`` (the server's writes), with the
filter building and the translation of PostgREST and transport failures into ``lib.errors``.

Every ``SupabaseRepository`` query carries the signed-in user's JWT, so PostgreSQL row-level
security (``sql/001_user_files.sql``) decides what they may see and the column grants
(``sql/003_trust.sql``) what they may change; usage figures are aggregated in the database by
``usage_summary()`` (``sql/004_usage_by_day.sql``). ``SupabaseServerRecords`` uses the service-role key
(one client per process, :func:`new_service_client`) and names the session's user id in every
write, since that role is not limited by row-level security.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import httpx
from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError

from lib.consent import MSG_ALREADY_WITHDRAWN, MSG_CONSENT_NOT_ALLOWED, MSG_WITHDRAW_BY_ERASURE
from lib.errors import (
    AccessDenied,
    KeyOwnershipError,
    MetadataError,
    MetadataUnavailable,
    NotFound,
    SessionExpired,
    StudyAccessLost,
    ValidationError,
)
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
    MSG_JOB_ACCESS_LOST,
    MSG_MOVE_NOT_READY,
    MSG_SAME_SPACE,
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
    quota_figures,
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
from lib.settings import SupabaseSettings
from lib.studies import (
    MSG_ALREADY_INVITED,
    MSG_ALREADY_MEMBER,
    MSG_INVITE_NOT_FOUND,
    MSG_LAST_OWNER,
    MSG_MOVE_NOT_ALLOWED,
    MSG_STUDY_NOT_EMPTY,
    MSG_STUDY_NOT_FOUND,
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

TABLE = "user_files"
TOMBSTONES = "recording_tombstones"
STUDIES = "studies"
MEMBERS = "study_members"
STUDY_ANALYSIS_FUNCTION = "set_study_analysis"
"""sql/011_study_jobs.sql: a batch job's write of a study row's analysis, while its owner is still a member."""
STUDY_DERIVATIVES_FUNCTION = "set_study_derivatives"
"""sql/011_study_jobs.sql: the same for a regenerated thumbnail's and preview's keys."""
MOVE_FUNCTION = "move_recording"
"""sql/012_moves.sql: a recording's switch into another space (rules, quota, space and keys in one step)."""
RESERVE_FUNCTION = "reserve_upload_in_space"
"""sql/010_study_ops.sql: the study's and the uploader's quota checks and the pending row's insert in one step."""
INVITES = "study_invites"
SERVICE_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
"""As for a user's client: connect fails fast, reads allow for a slow query."""


def new_service_client(settings: SupabaseSettings, *, timeout: httpx.Timeout = SERVICE_TIMEOUT) -> SyncPostgrestClient:
    """The server's own PostgREST client (service role): one per process, like the S3 client.

    It carries no user's token, only the service-role key (the headers supabase-py would send
    for that key), so sharing it between browser sessions leaks nothing of theirs; it is used
    only by :class:`SupabaseServerRecords`, never for a user's reads.
    """
    key = settings.service_role_key
    headers = {"apikey": key, "Authorization": f"Bearer {key}", "Accept": "application/json",
               "Content-Type": "application/json"}
    return SyncPostgrestClient(f"{settings.url.rstrip('/')}/rest/v1", headers=headers,
                               http_client=httpx.Client(timeout=timeout, follow_redirects=True))


class PostgrestRows:
    """Running postgrest-py builders, with every failure translated to lib.errors."""

    def _run(self, builder: Any) -> Any:
        try:
            return builder.execute()
        except Exception as exc:
            raise _translate_supabase_error(exc) from exc

    def _rows(self, builder: Any) -> list[dict[str, Any]]:
        return list(self._run(builder).data or [])


class SupabaseServerRecords(FactUpdates, PostgrestRows):
    """The server's writes to one user's rows, with the service-role client.

    The service role is not limited by row-level security, so every statement names
    ``user_id`` (the verified session's) itself: a record id of anyone else's matches nothing.
    """

    def __init__(self, client: SyncPostgrestClient, user_id: str) -> None:
        self._client = client
        self.user_id = str(user_id)

    def __repr__(self) -> str:
        return f"SupabaseServerRecords(user_id={self.user_id!r})"

    def rows_of(self, user_id: str) -> SupabaseServerRecords | None:
        """Only the session's own user: the app does not write other users' rows in the cloud."""
        return self if str(user_id) == self.user_id else None

    def _update(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        rows = self._rows(self._client.from_(TABLE).update(dict(values))
                          .eq("id", existing_record_id(record_id)).eq("user_id", self.user_id))
        if not rows:
            raise not_found()
        return record_from_row(rows[0])

    def get(self, record_id: str) -> FileRecord:
        rows = self._rows(self._client.from_(TABLE).select("*").eq("id", existing_record_id(record_id))
                          .eq("user_id", self.user_id).limit(1))
        if not rows:
            raise not_found()
        return record_from_row(rows[0])

    def reserve(self, new: NewRecord, quota_bytes: int,
                study_quota_bytes: int = DEFAULT_STUDY_QUOTA_BYTES) -> FileRecord:
        """The pending row, if it fits the quotas (``reserve_upload_in_space``: one step, one study and one user
        at a time)."""
        values = new_row_values(new, self.user_id)
        if values["study_id"] is not None:
            require_member(self._role_in(values["study_id"]), Action.UPLOAD)
        try:
            row = self._client.rpc(RESERVE_FUNCTION, {"p_row": values, "p_quota_bytes": int(quota_bytes),
                                                      "p_study_quota_bytes": int(study_quota_bytes)}).execute()
        except Exception as exc:
            raise _reserve_refusal(exc, new.original_name, values["size_bytes"]) from exc
        if not row.data:
            raise MetadataError("The recording was not saved; please try again.")
        return record_from_row(row.data)

    def study_role(self, study_id: str) -> Role | None:
        return self._role_in(study_id)

    def study_row(self, record_id: str, study_id: str) -> FileRecord:
        require_job_role(self._role_in(study_id))
        rows = self._rows(self._client.from_(TABLE).select("*").eq("id", existing_record_id(record_id))
                          .eq("study_id", existing_study_id(study_id)).limit(1))
        if not rows:
            raise not_found()
        return record_from_row(rows[0])

    def set_study_analysis(self, record_id: str, study_id: str, analysis: dict[str, Any] | None) -> FileRecord:
        """``set_study_analysis`` (sql/011_study_jobs.sql): the membership and the write in one statement."""
        try:
            rows = self._run(self._client.rpc(STUDY_ANALYSIS_FUNCTION, {
                "p_record": existing_record_id(record_id), "p_study": existing_study_id(study_id),
                "p_user": self.user_id, "p_analysis": analysis})).data
        except AccessDenied:
            raise StudyAccessLost(MSG_JOB_ACCESS_LOST) from None
        if not rows:
            raise not_found()
        return record_from_row(rows[0] if isinstance(rows, list) else rows)

    def set_study_derivatives(self, record_id: str, study_id: str, thumbnail_key: str | None,
                              preview_key: str | None) -> FileRecord:
        """``set_study_derivatives`` (sql/011_study_jobs.sql), the keys checked here first."""
        record_id, study_id = existing_record_id(record_id), existing_study_id(study_id)
        keys = derivative_columns(self.user_id, record_id, study_id, thumbnail_key, preview_key)
        try:
            rows = self._run(self._client.rpc(STUDY_DERIVATIVES_FUNCTION, {
                "p_record": record_id, "p_study": study_id, "p_user": self.user_id,
                "p_thumbnail_key": keys["thumbnail_key"], "p_preview_key": keys["preview_key"]})).data
        except AccessDenied:
            raise StudyAccessLost(MSG_JOB_ACCESS_LOST) from None
        if not rows:
            raise not_found()
        return record_from_row(rows[0] if isinstance(rows, list) else rows)

    def study_record_ids(self, study_id: str) -> list[str]:
        require_job_role(self._role_in(study_id))
        rows = self._rows(self._client.from_(TABLE).select("id").eq("study_id", existing_study_id(study_id))
                          .eq("status", Status.READY.value).order("created_at"))
        return [str(r["id"]) for r in rows]

    def _study_of(self, record_id: str) -> str | None:
        rows = self._rows(self._client.from_(TABLE).select("study_id")
                          .eq("id", existing_record_id(record_id)).eq("user_id", self.user_id))
        if not rows:
            raise not_found()
        return rows[0]["study_id"]

    def _role_in(self, study_id: str) -> Role | None:
        """The session user's role in the study: the service role reads every membership, so it asks for
        exactly this user's."""
        rows = self._rows(self._client.from_(MEMBERS).select("role")
                          .eq("study_id", existing_study_id(study_id)).eq("user_id", self.user_id))
        return role_of(rows[0]["role"]) if rows else None

    def _update_uploaded_or_owned(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        record_id = existing_record_id(record_id)
        found = self._rows(self._client.from_(TABLE).select("user_id, study_id").eq("id", record_id))
        if not found or (found[0]["user_id"] != self.user_id
                         and (found[0]["study_id"] is None or self._role_in(found[0]["study_id"]) is not Role.OWNER)):
            raise not_found()
        rows = self._rows(self._client.from_(TABLE).update(dict(values)).eq("id", record_id))
        if not rows:
            raise not_found()
        return record_from_row(rows[0])

    def delete(self, record_id: str) -> None:
        """Delete a row this user may delete (lib.studies.may_delete): their own, or one of a study they own."""
        record_id = existing_record_id(record_id)
        found = self._rows(self._client.from_(TABLE).select("user_id, study_id").eq("id", record_id))
        if not found:
            raise not_found()
        study_id = found[0]["study_id"]
        role = None if study_id is None else self._role_in(study_id)
        check_delete(study_id, role, uploader_id=found[0]["user_id"], caller_id=self.user_id)
        if not self._rows(self._client.from_(TABLE).delete().eq("id", record_id)):
            raise not_found()

    def move(self, record_id: str, study_id: str | None, keys: Mapping[str, str | None],
             study_quota_bytes: int = DEFAULT_STUDY_QUOTA_BYTES) -> FileRecord:
        """Switch the row's space and keys in one step (``move_recording``, sql/012_moves.sql, which checks the
        rules and the target study's quota again in the database, under the study's quota lock)."""
        found = self._rows(self._client.from_(TABLE).select("*").eq("id", existing_record_id(record_id)))
        if not found:
            raise not_found()
        record = record_from_row(found[0])
        target = None if study_id is None else existing_study_id(study_id)
        roles = tuple(None if s is None else self._role_in(s) for s in (record.study_id, target))
        check_move(record, (roles[0], roles[1]), target, self.user_id)
        try:
            row = self._client.rpc(MOVE_FUNCTION, {
                "p_record": record.id, "p_mover": self.user_id, "p_study": target,
                "p_keys": moved_key_columns(record, target, keys),
                "p_study_quota_bytes": int(study_quota_bytes)}).execute().data
        except APIError as exc:
            raise _move_refusal(exc, record) from exc
        except Exception as exc:
            raise _translate_supabase_error(exc) from exc
        if not row:
            raise MetadataError("The recording was not moved; please try again.")
        return record_from_row(row)

    def erase(self, record_id: str, reason: ErasureReason) -> Tombstone:
        """Delete the withdrawn row and write its tombstone in one transaction (``erase_recording``, which checks
        the same rule again in the database)."""
        record_id = existing_record_id(record_id)
        found = self._rows(self._client.from_(TABLE).select("*").eq("id", record_id))
        if not found:
            raise not_found()
        record = record_from_row(found[0])
        check_erasable(record, None if record.study_id is None else self._role_in(record.study_id), self.user_id)
        stone = self._run(self._client.rpc("erase_recording", {
            "p_record": record_id, "p_erased_by": self.user_id, "p_reason": ErasureReason(reason).value})).data
        if not stone:
            raise MetadataError("The recording's erasure was not recorded; withdraw it again.")
        return tombstone_from_row(stone)


class SupabaseRepository(ResearchUpdates, PostgrestRows):
    """Metadata in Supabase's ``public.user_files``, queried as the signed-in user.

    ``client`` is a supabase-py client that already carries the user's session;
    the service-role key is never used here.
    """

    def __init__(self, client: Any, user_id: str) -> None:
        self._client = client
        self.user_id = str(user_id)

    def __repr__(self) -> str:
        return f"SupabaseRepository(user_id={self.user_id!r})"

    def rows_of(self, user_id: str) -> SupabaseRepository | None:
        """Only the caller's own rows: row-level security hides everyone else's."""
        return self if str(user_id) == self.user_id else None

    def _update_research(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        if set(values) - set(RESEARCH_COLUMNS):
            raise MetadataError("Only research fields can be changed here.")
        rows = self._rows(self._client.table(TABLE).update(dict(values)).eq("id", existing_record_id(record_id)))
        if not rows:
            raise not_found()
        return record_from_row(rows[0])

    def set_consent(self, record_id: str, consent: Consent, consent_date: date | None) -> FileRecord:
        """``set_consent()`` (sql/009_consent.sql) decides who may, as the caller; refusals in words."""
        try:
            row = self._client.rpc("set_consent", {
                "p_record": existing_record_id(record_id), "p_consent": Consent(consent).value,
                "p_consent_date": consent_date_value(consent_date)}).execute().data
        except APIError as exc:
            raise _consent_refusal(exc) from exc
        except Exception as exc:
            raise _translate_supabase_error(exc) from exc
        if not row:
            raise not_found()
        return record_from_row(row)

    def tombstones(self, study_id: str | None) -> list[Tombstone]:
        """Row-level security shows a study's to its owners, a personal space's to its owner."""
        builder = self._client.table(TOMBSTONES).select("*")
        if study_id is None:
            builder = builder.is_("study_id", "null").eq("erased_by", self.user_id)
        else:
            require_member(self.study(study_id).role, Action.MANAGE_MEMBERS)
            builder = builder.eq("study_id", existing_study_id(study_id))
        return [tombstone_from_row(r) for r in self._rows(builder.order("erased_at", desc=True))]

    def set_retention(self, study_id: str, days: int | None) -> Study:
        require_member(self.study(study_id).role, Action.MANAGE_MEMBERS)
        rows = self._rows(self._client.table(STUDIES).update({"retention_days": retention_days(days)})
                          .eq("id", existing_study_id(study_id)))
        if not rows:
            raise NotFound(MSG_STUDY_NOT_FOUND)
        return self.study(study_id)

    def get(self, record_id: str) -> FileRecord:
        rows = self._rows(self._client.table(TABLE).select("*").eq("id", existing_record_id(record_id)).limit(1))
        if not rows:
            raise not_found()
        return record_from_row(rows[0])

    def get_many(self, record_ids: list[str]) -> list[FileRecord]:
        """The rows among ``record_ids`` this user may see (row-level security leaves out the others)."""
        ids = [existing_record_id(r) for r in record_ids]
        if not ids:
            return []
        return [record_from_row(r) for r in self._rows(self._client.table(TABLE).select("*").in_("id", ids))]

    def list(self, query: ListQuery) -> RecordPage:
        check_query(query)
        builder = self._client.table(TABLE).select("*", count="exact")
        if query.study_id is None:  # row-level security also shows the studies' rows: the personal space only
            builder = builder.eq("user_id", self.user_id).is_("study_id", "null")
        else:
            self.study(query.study_id)  # NotFound in words for a non-member, rather than an empty page
            builder = builder.eq("study_id", existing_study_id(query.study_id))
        builder = _apply_filters(builder, query)
        builder = builder.order(query.sort, desc=query.descending, nullsfirst=False)
        builder = builder.order("id", desc=query.descending)
        offset = (query.page - 1) * query.page_size
        result = self._run(builder.range(offset, offset + query.page_size - 1))
        records = tuple(record_from_row(r) for r in result.data or [])
        total = result.count if result.count is not None else offset + len(records)
        return RecordPage(records, total, query.page, query.page_size)

    def find_ready_by_sha256(self, sha256: str, study_id: str | None = None) -> FileRecord | None:
        """The newest ready recording with these bytes in the space: the personal one, or a study's (any
        member's upload; row-level security checks the membership)."""
        builder = self._client.table(TABLE).select("*")
        if study_id is None:
            builder = builder.eq("user_id", self.user_id).is_("study_id", "null")
        else:
            self.study(study_id)  # NotFound in words for a non-member, as the demo's store says
            builder = builder.eq("study_id", existing_study_id(study_id))
        rows = self._rows(builder.eq("sha256", sha256).eq("status", Status.READY.value)
                          .order("created_at", desc=True).limit(1))
        return record_from_row(rows[0]) if rows else None

    def usage(self) -> UsageSummary:
        since = {"daily_since": daily_history_start().isoformat()}
        figures = self._run(self._client.rpc("usage_summary", since)).data or {}
        largest = self._rows(
            self._client.table(TABLE).select("*").eq("user_id", self.user_id).eq("status", Status.READY.value)
            .order("size_bytes", desc=True).order("id").limit(LARGEST_COUNT)
        )
        return UsageSummary(
            total_bytes=int(figures.get("total_bytes") or 0),
            total_count=int(figures.get("total_count") or 0),
            by_day=_buckets(figures.get("by_day")),
            by_month=_buckets(figures.get("by_month")),
            by_content_type=_buckets(figures.get("by_content_type")),
            by_lossless=_buckets(figures.get("by_lossless")),
            by_subject=_buckets(figures.get("by_subject")),
            largest=tuple(record_from_row(r) for r in largest),
        )

    # --- studies: row-level security and the functions of sql/005_studies.sql decide --------------

    def studies(self) -> list[Study]:
        studies = self._rows(self._client.table(STUDIES).select("*"))
        roles = {r["study_id"]: r["role"] for r in
                 self._rows(self._client.table(MEMBERS).select("study_id, role").eq("user_id", self.user_id))}
        mine = [study_from_row(s, roles[s["id"]]) for s in studies if s["id"] in roles]
        return sorted(mine, key=lambda s: (s.name.lower(), s.id))

    def study(self, study_id: str) -> Study:
        study_id = existing_study_id(study_id)
        found = self._rows(self._client.table(STUDIES).select("*").eq("id", study_id))
        role = self._rows(self._client.table(MEMBERS).select("role").eq("study_id", study_id)
                          .eq("user_id", self.user_id))
        if not found or not role:
            raise NotFound(MSG_STUDY_NOT_FOUND)
        return study_from_row(found[0], role[0]["role"])

    def create_study(self, name: str, description: str = "") -> Study:
        made = self._run(self._client.rpc("create_study", {"p_name": study_name(name),
                                                           "p_description": study_description(description)})).data
        if not made:
            raise MetadataError("The study was not created; please try again.")
        return study_from_row(made, Role.OWNER)

    def members(self, study_id: str) -> list[Member]:
        rows = self._rows(self._client.rpc("study_member_list", {"p_study": existing_study_id(study_id)}))
        if not rows:  # a member always sees at least themselves
            raise NotFound(MSG_STUDY_NOT_FOUND)
        return [member_from_row(r) for r in rows]

    def add_member(self, study_id: str, email: str, role: Role) -> Member | Invite:
        """Add the confirmed account with ``email``, or invite the address (owners only,
        ``invite_study_member``: the database claims the invitation when an account confirms the address)."""
        email = invitee_email(email)
        study_id = existing_study_id(study_id)
        try:
            outcome = self._client.rpc("invite_study_member", {"p_study": study_id, "p_email": email,
                                                               "p_role": Role(role).value}).execute().data
        except APIError as exc:
            raise _study_refusal(exc, email) from exc
        except Exception as exc:
            raise _translate_supabase_error(exc) from exc
        if outcome == "invited":
            return next(i for i in self.invites(study_id) if i.email == email)
        return next(m for m in self.members(study_id) if m.email == email)

    def invites(self, study_id: str) -> list[Invite]:
        """The study's pending invitations (its owners only; row-level security shows them to no one else)."""
        require_member(self.study(study_id).role, Action.MANAGE_MEMBERS)
        rows = self._rows(self._client.table(INVITES).select("email, role, invited_at")
                          .eq("study_id", existing_study_id(study_id)).order("invited_at").order("email"))
        return [invite_from_row(r) for r in rows]

    def cancel_invite(self, study_id: str, email: str) -> None:
        require_member(self.study(study_id).role, Action.MANAGE_MEMBERS)
        if not self._rows(self._client.table(INVITES).delete().eq("study_id", existing_study_id(study_id))
                          .eq("email", invitee_email(email))):
            raise NotFound(MSG_INVITE_NOT_FOUND)

    def study_usage(self) -> list[UploaderUsage]:
        """Per study and uploader (``study_usage``, security invoker: row-level security counts the rows)."""
        return [uploader_usage_from_row(r) for r in self._rows(self._client.rpc("study_usage", {}))]

    def admin_studies(self) -> list[StudyOverview]:
        """Every study (``admin_study_overview`` refuses anyone whose token is not an administrator's)."""
        try:
            rows = self._client.rpc("admin_study_overview", {}).execute().data or []
        except APIError as exc:
            if exc.hint == "not_admin":
                raise AccessDenied("Only administrators see every study.") from exc
            raise _translate_supabase_error(exc) from exc
        except Exception as exc:
            raise _translate_supabase_error(exc) from exc
        return [overview_from_row(r) for r in rows]

    def set_role(self, study_id: str, user_id: str, role: Role) -> None:
        require_member(self.study(study_id).role, Action.MANAGE_MEMBERS)
        self._change_membership(self._client.table(MEMBERS).update({"role": Role(role).value}), study_id, user_id)

    def remove_member(self, study_id: str, user_id: str) -> None:
        """Remove a member (an owner), or leave the study (anyone, for themselves)."""
        if str(user_id) != self.user_id:
            require_member(self.study(study_id).role, Action.MANAGE_MEMBERS)
        self._change_membership(self._client.table(MEMBERS).delete(), study_id, user_id)

    def delete_study(self, study_id: str) -> None:
        """Delete an empty study (an owner only; its memberships go with it, by cascade)."""
        study = self.study(study_id)
        require_member(study.role, Action.MANAGE_MEMBERS)
        try:
            self._client.table(STUDIES).delete().eq("id", study.id).execute()
        except APIError as exc:
            if exc.code == "23503":  # user_files.study_id: the study still holds recordings
                raise ValidationError(MSG_STUDY_NOT_EMPTY.format(name=study.name)) from exc
            raise _translate_supabase_error(exc) from exc
        except Exception as exc:
            raise _translate_supabase_error(exc) from exc

    def _change_membership(self, builder: Any, study_id: str, user_id: str) -> None:
        try:
            rows = builder.eq("study_id", existing_study_id(study_id)).eq("user_id", str(user_id)).execute().data
        except APIError as exc:
            raise _study_refusal(exc, "") from exc
        except Exception as exc:
            raise _translate_supabase_error(exc) from exc
        if not rows:
            raise NotFound("That person is not a member of this study.")


def _reserve_refusal(exc: Exception, name: str, size: int) -> Exception:
    """A quota refusal of ``reserve_upload_in_space`` (by hint) in words; anything else as any failure."""
    if isinstance(exc, APIError) and exc.hint in {"quota_exceeded", "study_quota_exceeded"}:
        refusal = quota_exceeded if exc.hint == "quota_exceeded" else study_quota_exceeded
        return refusal(name, size, *quota_figures(exc.details))
    return _translate_supabase_error(exc)


def _move_refusal(exc: APIError, record: FileRecord) -> Exception:
    """sql/012_moves.sql's refusals (by hint) in words; anything else as any metadata failure."""
    if exc.hint == "study_quota_exceeded":
        size = record.size_bytes + record.ground_truth_bytes
        return study_quota_exceeded(record.original_name, size, *quota_figures(exc.details))
    messages: dict[str, Exception] = {
        "not_found": not_found(), "not_allowed": AccessDenied(MSG_MOVE_NOT_ALLOWED),
        "same_space": ValidationError(MSG_SAME_SPACE.format(name=record.original_name)),
        "not_ready": ValidationError(MSG_MOVE_NOT_READY.format(name=record.original_name))}
    return messages.get(str(exc.hint), _translate_supabase_error(exc))


def _study_refusal(exc: APIError, email: str) -> Exception:
    """sql/005_studies.sql's refusals (by hint) in words; anything else as any metadata failure."""
    messages = {"already_invited": MSG_ALREADY_INVITED, "already_member": MSG_ALREADY_MEMBER,
                "last_owner": MSG_LAST_OWNER}
    if exc.hint in messages:
        return ValidationError(messages[str(exc.hint)].format(email=email))
    if exc.hint == "not_owner":
        return AccessDenied("Only a study's owners add members.")
    return _translate_supabase_error(exc)


def _consent_refusal(exc: APIError) -> Exception:
    """sql/009_consent.sql's refusals (by hint) in words; anything else as any metadata failure."""
    messages: dict[str, Exception] = {
        "not_found": not_found(), "not_allowed": AccessDenied(MSG_CONSENT_NOT_ALLOWED),
        "withdrawn": ValidationError(MSG_ALREADY_WITHDRAWN), "bad_state": ValidationError(MSG_WITHDRAW_BY_ERASURE)}
    return messages.get(str(exc.hint), _translate_supabase_error(exc))


def _buckets(items: Any) -> tuple[UsageBucket, ...]:
    return tuple(UsageBucket(str(i["label"]), int(i["bytes"]), int(i["count"])) for i in items or ())


def _postgrest_quote(value: str) -> str:
    """A value inside a PostgREST ``or=(...)`` list: quoted so commas/parens are literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _apply_filters(builder: Any, query: ListQuery) -> Any:
    if text := storable_text(query.text).strip():
        # PostgREST spells LIKE's % as *; the escaped % and _ stay literal.
        pattern = _postgrest_quote(like_pattern(text).replace("%", "*").replace("\\*", "\\%"))
        builder = builder.or_(",".join(f"{column}.ilike.{pattern}" for column in SEARCH_COLUMNS))
    if query.statuses:
        builder = builder.in_("status", [Status(s).value for s in query.statuses])
    if query.tags:
        builder = builder.contains("tags", list(query.tags))
    if query.date_from:
        builder = builder.gte("created_at", iso(day_start(query.date_from)))
    if query.date_to:
        builder = builder.lt("created_at", iso(day_start(query.date_to + timedelta(days=1))))
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
    if isinstance(exc, httpx.TransportError):
        return MetadataUnavailable("The metadata service (Supabase) could not be reached; try again shortly.")
    if not isinstance(exc, APIError):
        return MetadataError(f"The metadata service failed: {type(exc).__name__}")
    code = str(exc.code or "")
    message = str(exc.message or "")
    if code in {"PGRST301", "PGRST302", "PGRST303"} or "JWT expired" in message:
        return SessionExpired("Your session has expired; please sign in again.")
    if code == "23514":
        if "keys_canonical" in message:  # sql/005_studies.sql's key layout check
            return KeyOwnershipError("That storage key does not belong to your account.")
        return MetadataError("The metadata service rejected a value of the recording.")
    if code in _PG_CODES:
        cls, text = _PG_CODES[code]
        return cls(text)
    if (code.isdigit() and int(code) >= 500) or code.startswith("08") or code in {"53300", "57P01"}:
        return MetadataUnavailable("The metadata service (Supabase) is unavailable; try again shortly.")
    return MetadataError(f"The metadata service refused the request ({code or 'unknown error'}).")
