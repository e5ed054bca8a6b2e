"""What every repository is and shares: the ``Repository`` protocol, the row
updates both backends express as "set these columns on my row", and the rules
both apply (key ownership, record ids, list-query checks, row → ``FileRecord``).

A repository is bound to ONE user, the signed-in one. Another user's row is
indistinguishable from a missing one (``NotFound``) and a key outside the
user's prefix is refused (``KeyOwnershipError``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time
from typing import Any, Protocol

from lib.errors import KeyOwnershipError, NotFound, ValidationError
from lib.keys import check_owner, user_prefix
from lib.records import (
    MAX_PAGE_SIZE,
    SORT_COLUMNS,
    FileRecord,
    GroundTruthFile,
    ListQuery,
    NewRecord,
    RecordPage,
    ResearchFields,
    Status,
    UsageSummary,
    VideoProperties,
)

MAX_ERROR_CHARS = 2_000
"""Failure reasons are shown in a table cell; longer ones are cut."""
LARGEST_COUNT = 10
"""How many of the largest recordings a usage summary lists."""
ITER_BATCH = 500
"""Rows per page when iterating over all of a user's rows."""


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
    def set_ground_truth(self, record_id: str, attached: GroundTruthFile | None) -> FileRecord: ...
    def delete(self, record_id: str) -> None: ...
    def usage(self) -> UsageSummary: ...
    def iter_all(self, statuses: tuple[Status, ...] = ()) -> Iterator[FileRecord]: ...
    def rows_of(self, user_id: str) -> Repository | None: ...


# --- shared rules ----------------------------------------------------------


def owned_key(key: str, user_id: str) -> str:
    """The key, if it names an object under the user's prefix; the database checks this too."""
    if check_owner(key, user_id) == user_prefix(user_id):
        raise KeyOwnershipError("That storage key names a folder, not a file.")
    return key


def owned_optional_key(key: str | None, user_id: str) -> str | None:
    return None if key is None else owned_key(key, user_id)


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
    )


class RowUpdates:
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
            "thumbnail_key": owned_optional_key(thumbnail_key, self.user_id),
            "preview_key": owned_optional_key(preview_key, self.user_id), **video_columns(video),
        }
        if analysis is not None:
            values["analysis"] = analysis
        return self._update(record_id, values)

    def mark_failed(self, record_id: str, reason: str) -> FileRecord:
        return self._update(record_id, {"status": Status.FAILED.value, "error": reason[:MAX_ERROR_CHARS]})

    def update_research(self, record_id: str, research: ResearchFields) -> FileRecord:
        return self._update(record_id, research_columns(research))

    def set_analysis(self, record_id: str, analysis: dict[str, Any] | None) -> FileRecord:
        return self._update(record_id, {"analysis": analysis})

    def set_ground_truth(self, record_id: str, attached: GroundTruthFile | None) -> FileRecord:
        """Point the row at its ground-truth file (None: it has none), with the name and bytes usage counts."""
        if attached is None:
            return self._update(record_id, {"ground_truth_key": None, "ground_truth_name": None,
                                            "ground_truth_bytes": 0})
        return self._update(record_id, {"ground_truth_key": owned_key(attached.key, self.user_id),
                                        "ground_truth_name": storable_text(attached.name),
                                        "ground_truth_bytes": attached.size_bytes})

    def iter_all(self, statuses: tuple[Status, ...] = ()) -> Iterator[FileRecord]:
        yield from _iter_pages(self, statuses)


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
