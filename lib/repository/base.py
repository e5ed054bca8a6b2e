"""What every repository is and shares: the two protocols, the rules both backends apply
(key layout, record ids, list-query checks, row → ``FileRecord``) and the fact updates both
express as "set these columns on this user's row".

Two ways into a user's rows, kept apart:

* :class:`Repository` runs as the signed-in user: it reads their rows and the rows of the studies they
  are a member of, edits research fields, and manages studies and their members (``lib.studies`` says
  which role may do what). In the cloud it carries the user's JWT, so row-level security decides; a
  row the user may not see is indistinguishable from a missing one (``NotFound``).
* :class:`ServerRecords` is the server writing facts and the row lifecycle (reserve a pending
  row against the quota, mark it ready or failed, analysis, keys, delete) for ONE user, the
  signed-in one, whose id it was built with from the verified session, never from a record; it checks
  that user's role in a study itself (the service role is not limited by row-level security).
  In the cloud it uses the service-role key; ``sql/003_trust.sql`` says why a user's own token
  cannot write any of this.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time
from typing import Any, Protocol

from lib.errors import AccessDenied, NotFound, QuotaExceeded, StudyAccessLost, ValidationError
from lib.keys import Owner, Space, check_record_key, sanitize_filename
from lib.records import (
    MAX_PAGE_SIZE,
    SORT_COLUMNS,
    Consent,
    ErasureReason,
    FileRecord,
    GroundTruthFile,
    ListQuery,
    NewRecord,
    RecordPage,
    ResearchFields,
    Status,
    Tombstone,
    UsageSummary,
    VideoProperties,
)
from lib.settings import DEFAULT_STUDY_QUOTA_BYTES
from lib.studies import (
    MSG_MOVE_NOT_ALLOWED,
    MSG_STUDY_NOT_FOUND,
    Action,
    Invite,
    Member,
    Role,
    Study,
    StudyOverview,
    UploaderUsage,
    allows,
    may_delete,
    may_move,
    require,
)
from lib.units import human_bytes

MAX_ERROR_CHARS = 2_000
"""Failure reasons are shown in a table cell; longer ones are cut."""
LARGEST_COUNT = 10
"""How many of the largest recordings a usage summary lists."""
ITER_BATCH = 500
"""Rows per page when iterating over all of a user's rows."""
RESEARCH_COLUMNS = ("subject_id", "session_label", "notes", "tags")
"""The only columns a user's own token may change (``sql/003_trust.sql`` grants exactly these)."""


class Repository(Protocol):
    """The signed-in user's rows, as that user: reads and research fields. Other users' rows do not exist."""

    user_id: str

    def get(self, record_id: str) -> FileRecord: ...
    def get_many(self, record_ids: list[str]) -> list[FileRecord]: ...
    def list(self, query: ListQuery) -> RecordPage: ...
    def find_ready_by_sha256(self, sha256: str, study_id: str | None = None) -> FileRecord | None: ...
    def update_research(self, record_id: str, research: ResearchFields) -> FileRecord: ...
    def set_consent(self, record_id: str, consent: Consent, consent_date: date | None) -> FileRecord:
        """Set a recording's consent (internal or shareable) and its date: its uploader or a study owner only
        (lib.consent says who; withdrawing is lib.erasure's)."""
        ...
    def tombstones(self, study_id: str | None) -> list[Tombstone]:
        """The erased recordings of a study (its owners), or of the caller's personal space (None)."""
        ...
    def set_retention(self, study_id: str, days: int | None) -> Study:
        """A study's retention period in days (None: keep recordings until deleted); owners only."""
        ...
    def usage(self) -> UsageSummary: ...
    def iter_all(self, statuses: tuple[Status, ...] = ()) -> Iterator[FileRecord]: ...
    def rows_of(self, user_id: str) -> Repository | None: ...
    def studies(self) -> list[Study]: ...
    def study(self, study_id: str) -> Study: ...
    def create_study(self, name: str, description: str = "") -> Study: ...
    def members(self, study_id: str) -> list[Member]: ...
    def add_member(self, study_id: str, email: str, role: Role) -> Member | Invite:
        """The account with ``email`` joins at once (a Member); an address no confirmed account has yet is
        invited (an Invite), and joins when an account confirms it."""
        ...
    def invites(self, study_id: str) -> list[Invite]: ...
    def cancel_invite(self, study_id: str, email: str) -> None: ...
    def study_usage(self) -> list[UploaderUsage]:
        """Bytes and ready recordings per uploader in every study the user is a member of."""
        ...
    def admin_studies(self) -> list[StudyOverview]:
        """Every study (administrators only: lib.usage checks the caller, the cloud's database again)."""
        ...
    def set_role(self, study_id: str, user_id: str, role: Role) -> None: ...
    def remove_member(self, study_id: str, user_id: str) -> None: ...
    def delete_study(self, study_id: str) -> None: ...


class ServerRecords(Protocol):
    """The server's writes to the rows of ONE user (``user_id``, from the verified session).

    Every method acts on that user's rows only; a record id of anyone else's is ``NotFound``.
    """

    user_id: str

    def reserve(self, new: NewRecord, quota_bytes: int,
                study_quota_bytes: int = DEFAULT_STUDY_QUOTA_BYTES) -> FileRecord:
        """The pending row, if it fits the uploader's quota and (in a study) the study's: QuotaExceeded if not."""
        ...
    def mark_ready(self, record_id: str, *, size_bytes: int, sha256: str | None,
                   video: VideoProperties | None, thumbnail_key: str | None, preview_key: str | None,
                   analysis: dict[str, Any] | None = None) -> FileRecord: ...
    def mark_failed(self, record_id: str, reason: str) -> FileRecord: ...
    def get(self, record_id: str) -> FileRecord:
        """The user's row as the server reads it (a batch job's driver acts for its owner without their token)."""
        ...
    def set_analysis(self, record_id: str, analysis: dict[str, Any] | None) -> FileRecord: ...
    def set_ground_truth(self, record_id: str, attached: GroundTruthFile | None) -> FileRecord: ...
    def delete(self, record_id: str) -> None: ...
    def mark_withdrawn(self, record_id: str, reason: str) -> FileRecord:
        """The erasure's first step: consent withdrawn (final), status failed with ``reason``."""
        ...
    def erase(self, record_id: str, reason: ErasureReason) -> Tombstone:
        """The erasure's last step, once the bucket holds nothing of it: delete the (withdrawn) row and write its
        tombstone, in one transaction. The uploader or a study owner only."""
        ...
    def move(self, record_id: str, study_id: str | None, keys: Mapping[str, str | None],
             study_quota_bytes: int = DEFAULT_STUDY_QUOTA_BYTES) -> FileRecord:
        """Switch a stored row into the space ``study_id`` (None: its uploader's personal space) with its objects'
        new ``keys`` (by column, :data:`KEY_KINDS`), in one step, once the objects lie there: only someone who
        owns both spaces (lib.studies.may_move); a study must have room for it (QuotaExceeded)."""
        ...
    def rows_of(self, user_id: str) -> ServerRecords | None: ...
    def study_role(self, study_id: str) -> Role | None:
        """This user's role in the study now (None: not a member)."""
        ...
    def study_row(self, record_id: str, study_id: str) -> FileRecord:
        """A row of the study, for a batch job of this user over it: StudyAccessLost unless the user holds the
        member role (or owner) there now; NotFound for a row that is not (any more) the study's."""
        ...
    def set_study_analysis(self, record_id: str, study_id: str, analysis: dict[str, Any] | None) -> FileRecord:
        """A batch job's write of a study row's analysis, in one statement that holds only while the user is a
        member (or owner) of the study and the row is the study's and stored: StudyAccessLost, NotFound."""
        ...
    def set_derivatives(self, record_id: str, thumbnail_key: str | None, preview_key: str | None) -> FileRecord:
        """The keys of the user's row's regenerated thumbnail and preview (each checked against the layout)."""
        ...
    def set_study_derivatives(self, record_id: str, study_id: str, thumbnail_key: str | None,
                              preview_key: str | None) -> FileRecord:
        """:meth:`set_derivatives` for a study's row, on the terms of :meth:`set_study_analysis`."""
        ...
    def study_record_ids(self, study_id: str) -> list[str]:
        """The study's stored recordings, for a job over all of them (a member or owner: StudyAccessLost)."""
        ...


# --- shared rules ----------------------------------------------------------


def record_key(key: str | None, user_id: str, record_id: str, kind: str, study_id: str | None = None) -> str | None:
    """The key, if it is the one the app's layout gives this record in its space (None stays None); the
    database checks the same."""
    return None if key is None else check_record_key(key, user_id, record_id, kind, study_id)


MSG_SAME_SPACE = "{name} is in that space already."
MSG_MOVE_NOT_READY = "Only a stored (ready) recording is moved; {name} is not (still uploading, failed or withdrawn)."
KEY_KINDS = {"s3_key": "original", "thumbnail_key": "thumbnail", "preview_key": "preview",
             "ground_truth_key": "ground_truth"}
"""A row's key columns and the kind of object each names (lib.keys.KEY_FILES)."""


def moved_key_columns(record: FileRecord, study_id: str | None, keys: Mapping[str, str | None]) -> dict[str, Any]:
    """The key columns of ``record`` moved into ``study_id``, each checked against that space's layout (the
    database checks the same); a row's missing key stays missing."""
    return {column: record_key(keys.get(column), record.user_id, record.id, kind, study_id)
            for column, kind in KEY_KINDS.items()}


def check_move(record: FileRecord, roles: tuple[Role | None, Role | None], study_id: str | None,
               caller_id: str) -> None:
    """What a move checks in both stores before the switch: the caller sees the row (NotFound) and the target
    study (NotFound), the row is stored and not yet in that space (ValidationError), and the caller owns both
    spaces (AccessDenied). ``roles``: the caller's in the row's study and in the target one."""
    source_role, target_role = roles
    if not (record.user_id == caller_id if record.study_id is None else source_role is not None):
        raise not_found()
    if study_id is not None and target_role is None:
        raise NotFound(MSG_STUDY_NOT_FOUND)
    if record.study_id == study_id:
        raise ValidationError(MSG_SAME_SPACE.format(name=record.original_name))
    if record.status is not Status.READY or record.consent is Consent.WITHDRAWN:
        raise ValidationError(MSG_MOVE_NOT_READY.format(name=record.original_name))
    if not may_move(record.study_id, source_role, study_id, target_role, uploader_id=record.user_id,
                    caller_id=caller_id):
        raise AccessDenied(MSG_MOVE_NOT_ALLOWED)


def new_row_values(new: NewRecord, user_id: str) -> dict[str, Any]:
    """The columns of a reserved (pending) row, every key checked against the layout first."""
    record_id = new_row_id(new.id)
    study_id = None if new.study_id is None else existing_study_id(new.study_id)
    return {
        "id": record_id, "user_id": user_id, "study_id": study_id, "bucket": new.bucket,
        "s3_key": record_key(new.s3_key, user_id, record_id, "original", study_id),
        "original_name": storable_text(new.original_name), "content_type": new.content_type,
        "size_bytes": int(new.size_bytes), "sha256": new.sha256, "status": Status.PENDING.value,
        "thumbnail_key": record_key(new.thumbnail_key, user_id, record_id, "thumbnail", study_id),
        "preview_key": record_key(new.preview_key, user_id, record_id, "preview", study_id),
        **video_columns(new.video), **research_columns(new.research),
    }


def record_space(user_id: str, record: FileRecord) -> Owner:
    """Whose keys ``record``'s are, for the signed-in ``user_id``: its study's space for a study recording
    (the row must have come through that user's repository, so their membership was checked: row-level
    security in the cloud), the user's own prefix for a personal one."""
    return user_id if record.study_id is None else Space(user_id, record.study_id)


def existing_study_id(study_id: str) -> str:
    """A canonical UUID string; anything else cannot name a study, so NotFound."""
    try:
        return str(uuid.UUID(str(study_id)))
    except ValueError:
        raise NotFound(MSG_STUDY_NOT_FOUND) from None


def _held(held: int, pending: int) -> str:
    """What a quota holds now, and how much of it unfinished uploads reserve."""
    unfinished = f" ({human_bytes(pending)} of it in unfinished uploads)" if pending else ""
    return f"{human_bytes(held)}{unfinished}"


def quota_exceeded(name: str, size: int, held: int, pending: int, quota: int) -> QuotaExceeded:
    """The one message for a reservation that does not fit, whichever store refused it."""
    return QuotaExceeded(
        f"{sanitize_filename(name)} ({human_bytes(size)}) does not fit: you use {_held(held, pending)} "
        f"of your {human_bytes(quota)} quota. Delete recordings you no longer need, or ask an administrator "
        "for more space."
    )


def study_quota_exceeded(name: str, size: int, held: int, pending: int, quota: int) -> QuotaExceeded:
    """The one message for an upload that does not fit into its study's quota."""
    return QuotaExceeded(
        f"{sanitize_filename(name)} ({human_bytes(size)}) does not fit into the study: its recordings hold "
        f"{_held(held, pending)} of its {human_bytes(quota)} quota. Ask an owner of the study to delete "
        "recordings it no longer needs, or an administrator for more space."
    )


def quota_figures(detail: str | None) -> tuple[int, int, int]:
    """(held, pending, quota) from the JSON detail ``reserve_upload`` raises with."""
    figures = json.loads(detail or "{}")
    return int(figures.get("held_bytes", 0)), int(figures.get("pending_bytes", 0)), int(figures.get("quota_bytes", 0))


def existing_record_id(record_id: str) -> str:
    """A canonical UUID string; anything else cannot name a record, so NotFound."""
    try:
        return str(uuid.UUID(str(record_id)))
    except ValueError:
        raise NotFound("That recording does not exist.") from None


def new_row_id(record_id: str) -> str:
    """The canonical UUID string a new row is stored under; anything else is refused."""
    try:
        return str(uuid.UUID(str(record_id)))
    except ValueError:
        raise ValidationError("A new recording needs a UUID as its id.") from None


def not_found() -> NotFound:
    return NotFound("That recording does not exist (or is not yours).")


def require_member(role: Role | None, action: Action) -> None:
    """NotFound for a non-member (a study they may not even know the name of); AccessDenied, in words, for
    a member whose role does not allow ``action``."""
    if role is None:
        raise NotFound(MSG_STUDY_NOT_FOUND)
    require(role, action)


MSG_JOB_ACCESS_LOST = ("The job stopped: the member who started it is no longer a member of the study, or is now a "
                      "viewer there. Recordings already finished keep their results; nothing else was written.")


def derivative_columns(user_id: str, record_id: str, study_id: str, thumbnail_key: str | None,
                       preview_key: str | None) -> dict[str, str | None]:
    """A study row's regenerated derivative keys, each checked against the study's layout."""
    return {"thumbnail_key": record_key(thumbnail_key, user_id, record_id, "thumbnail", study_id),
            "preview_key": record_key(preview_key, user_id, record_id, "preview", study_id)}


def require_job_role(role: Role | None) -> None:
    """StudyAccessLost unless ``role`` may run batch jobs in the study (lib.studies.Action.RUN_JOBS)."""
    if not allows(role, Action.RUN_JOBS):
        raise StudyAccessLost(MSG_JOB_ACCESS_LOST)


def check_delete(study_id: str | None, role: Role | None, *, uploader_id: str, caller_id: str) -> None:
    """Refuse deleting a row the caller may not delete (lib.studies.may_delete): NotFound when they cannot
    see it, AccessDenied when they can."""
    if may_delete(study_id, role, uploader_id=str(uploader_id), caller_id=caller_id):
        return
    if study_id is not None and role is not None:
        raise AccessDenied("Only the recording's uploader or an owner of the study deletes it.")
    raise not_found()


def check_erasable(record: FileRecord, role: Role | None, caller_id: str) -> None:
    """What erase() checks in both stores: the row was marked withdrawn first, and the caller may erase it."""
    if record.consent is not Consent.WITHDRAWN:
        raise ValidationError("Mark the recording withdrawn (and empty its storage) before erasing it.")
    check_delete(record.study_id, role, uploader_id=record.user_id, caller_id=caller_id)


MSG_RETENTION = "A retention period is a whole number of days, at least 1 (or none)."
"""A retention period that is not one (``sql/005_studies.sql`` checks retention_days > 0)."""


def retention_days(days: int | None) -> int | None:
    """A study's retention period as stored (``sql/005_studies.sql`` checks the same), or ValidationError."""
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValidationError(MSG_RETENTION)
    return days


def consent_date_value(consent_date: date | None) -> str | None:
    """The consent date as both stores take it (ISO ``YYYY-MM-DD``)."""
    return None if consent_date is None else consent_date.isoformat()


def check_query(query: ListQuery) -> None:
    if query.sort not in SORT_COLUMNS:
        raise ValidationError(f"Cannot sort by {query.sort!r}.")
    if query.page < 1 or not 1 <= query.page_size <= MAX_PAGE_SIZE:
        raise ValidationError(f"Page must be ≥ 1 and page size between 1 and {MAX_PAGE_SIZE}.")
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise ValidationError("The start date is after the end date.")


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere; ``*`` is a wildcard, ``%``/``_`` are literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.replace('*', '%')}%"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def iso(moment: datetime) -> str:
    """Fixed-width UTC text, so string order is time order in SQLite."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: str | datetime) -> datetime:
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def video_columns(video: VideoProperties | None) -> dict[str, Any]:
    if video is None:
        return {}
    return {
        "duration_s": video.duration_s, "fps": video.fps, "width": video.width, "height": video.height,
        "frame_count": video.frame_count, "codec": video.codec, "lossless": video.lossless,
        "browser_playable": video.browser_playable, "bit_rate": video.bit_rate,
    }


def storable_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL (SQLite can): drop it so both stores agree.
    return value.replace("\x00", "")


def research_columns(research: ResearchFields) -> dict[str, Any]:
    tags = tuple(dict.fromkeys(storable_text(t).strip() for t in research.tags if storable_text(t).strip()))
    return {"subject_id": storable_text(research.subject_id).strip(),
            "session_label": storable_text(research.session_label).strip(),
            "notes": storable_text(research.notes), "tags": list(tags)}


def record_from_row(row: Mapping[str, Any]) -> FileRecord:
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
        ground_truth_name=row.get("ground_truth_name"), ground_truth_bytes=int(row.get("ground_truth_bytes") or 0),
        study_id=None if row.get("study_id") is None else str(row["study_id"]),
        consent=Consent(row.get("consent") or Consent.INTERNAL.value),
        consent_date=_parse_date(row.get("consent_date")),
    )


def _parse_date(value: str | date | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def tombstone_from_row(row: Mapping[str, Any]) -> Tombstone:
    return Tombstone(id=str(row["id"]), study_id=None if row.get("study_id") is None else str(row["study_id"]),
                     subject_id=row.get("subject_id") or "", reason=ErasureReason(row["reason"]),
                     erased_at=_parse_time(row["erased_at"]), erased_by=str(row["erased_by"]))


def study_from_row(row: Mapping[str, Any], role: str) -> Study:
    """A Study from a ``studies`` row as either store returns it, with the caller's role in it."""
    retention = row.get("retention_days")
    return Study(id=str(row["id"]), name=row["name"], description=row.get("description") or "", role=Role(role),
                 created_at=_parse_time(row["created_at"]),
                 retention_days=None if retention is None else int(retention))


def member_from_row(row: Mapping[str, Any]) -> Member:
    return Member(user_id=str(row["user_id"]), email=row.get("email") or "", role=Role(row["role"]),
                  added_at=_parse_time(row["added_at"]))


def invite_from_row(row: Mapping[str, Any]) -> Invite:
    return Invite(email=str(row["email"]), role=Role(row["role"]), invited_at=_parse_time(row["invited_at"]))


def uploader_usage_from_row(row: Mapping[str, Any]) -> UploaderUsage:
    return UploaderUsage(study_id=str(row["study_id"]), user_id=str(row["user_id"]), bytes=int(row["bytes"] or 0),
                         recordings=int(row["recordings"] or 0))


def overview_from_row(row: Mapping[str, Any]) -> StudyOverview:
    return StudyOverview(id=str(row["study_id"]), name=row["name"], owner_email=row.get("owner_email") or "",
                         members=int(row["members"] or 0), bytes=int(row["bytes"] or 0),
                         recordings=int(row["recordings"] or 0), created_at=_parse_time(row["created_at"]))


class FactUpdates:
    """The fact updates both server-side stores express as "set these columns on the user's row".

    Subclasses provide ``user_id``, ``_update(record_id, values)``, which refuses (NotFound) a row that is
    not that user's, ``_update_uploaded_or_owned(record_id, values)``, which also accepts a row of a study
    that user owns, and ``_study_of(record_id)``, the space of one of that user's rows (its keys lie in it).
    """

    user_id: str

    def _update(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        raise NotImplementedError

    def _study_of(self, record_id: str) -> str | None:
        raise NotImplementedError

    def _key(self, key: str | None, record_id: str, kind: str) -> str | None:
        """``key`` checked against the layout of the row's own space (read only when there is a key)."""
        return None if key is None else record_key(key, self.user_id, record_id, kind, self._study_of(record_id))

    def mark_ready(self, record_id: str, *, size_bytes: int, sha256: str | None,
                   video: VideoProperties | None, thumbnail_key: str | None, preview_key: str | None,
                   analysis: dict[str, Any] | None = None) -> FileRecord:
        record_id = existing_record_id(record_id)
        values: dict[str, Any] = {
            "status": Status.READY.value, "error": None, "size_bytes": size_bytes, "sha256": sha256,
            "thumbnail_key": self._key(thumbnail_key, record_id, "thumbnail"),
            "preview_key": self._key(preview_key, record_id, "preview"), **video_columns(video),
        }
        if analysis is not None:
            values["analysis"] = analysis
        return self._update(record_id, values)

    def _update_uploaded_or_owned(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        raise NotImplementedError

    def mark_failed(self, record_id: str, reason: str) -> FileRecord:
        """Mark the row failed: the uploader's (a failed upload), or, for an owner of its study, any row of the
        study (the first step of deleting it, lib.library)."""
        return self._update_uploaded_or_owned(record_id, {"status": Status.FAILED.value,
                                                          "error": storable_text(reason)[:MAX_ERROR_CHARS]})

    def set_analysis(self, record_id: str, analysis: dict[str, Any] | None) -> FileRecord:
        return self._update(record_id, {"analysis": analysis})

    def set_derivatives(self, record_id: str, thumbnail_key: str | None, preview_key: str | None) -> FileRecord:
        record_id = existing_record_id(record_id)
        return self._update(record_id, {"thumbnail_key": self._key(thumbnail_key, record_id, "thumbnail"),
                                        "preview_key": self._key(preview_key, record_id, "preview")})

    def mark_withdrawn(self, record_id: str, reason: str) -> FileRecord:
        """Consent withdrawn (final: the database keeps it so), status failed: from now on nothing plays, shares
        or counts it; the uploader's row, or any row of a study the user owns (lib.erasure checked the rule)."""
        return self._update_uploaded_or_owned(record_id, {
            "consent": Consent.WITHDRAWN.value, "status": Status.FAILED.value,
            "error": storable_text(reason)[:MAX_ERROR_CHARS]})

    def set_ground_truth(self, record_id: str, attached: GroundTruthFile | None) -> FileRecord:
        """Point the row at its ground-truth file (None: it has none), with the name and bytes usage counts."""
        record_id = existing_record_id(record_id)
        if attached is None:
            return self._update(record_id, {"ground_truth_key": None, "ground_truth_name": None,
                                            "ground_truth_bytes": 0})
        return self._update(record_id, {
            "ground_truth_key": self._key(attached.key, record_id, "ground_truth"),
            "ground_truth_name": storable_text(attached.name), "ground_truth_bytes": int(attached.size_bytes)})


class ResearchUpdates:
    """What both user-side repositories share: research edits and iterating over every own row."""

    user_id: str

    def _update_research(self, record_id: str, values: Mapping[str, Any]) -> FileRecord:
        raise NotImplementedError

    def list(self, query: ListQuery) -> RecordPage:
        raise NotImplementedError

    def update_research(self, record_id: str, research: ResearchFields) -> FileRecord:
        return self._update_research(record_id, research_columns(research))

    def iter_all(self, statuses: tuple[Status, ...] = ()) -> Iterator[FileRecord]:
        yield from _iter_pages(self, statuses)


def _iter_pages(repo: ResearchUpdates, statuses: tuple[Status, ...]) -> Iterator[FileRecord]:
    """Every own row, oldest first, a page at a time so memory stays flat."""
    page = 1
    while True:
        result = repo.list(ListQuery(statuses=statuses, sort="created_at", descending=False,
                                     page=page, page_size=ITER_BATCH))
        yield from result.records
        if page * ITER_BATCH >= result.total or not result.records:
            return
        page += 1
