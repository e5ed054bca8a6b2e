"""The values that describe a recording's metadata: what a repository stores
and returns, and the rules of a list query.

Nothing here touches a database, so ``media``, ``usage``, ``library`` and the
UI can use these types without depending on persistence (``lib.repository``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

MAX_PAGE_SIZE = 500
"""Largest page a list call returns: a table bigger than this is unreadable anyway."""
SORT_COLUMNS = frozenset(
    {"created_at", "updated_at", "original_name", "size_bytes", "duration_s", "subject_id",
     "session_label", "status", "content_type", "fps"}
)
"""Columns a list may be sorted by; anything else is refused, never interpolated."""
SEARCH_COLUMNS = ("original_name", "subject_id", "session_label", "notes")
"""The fields a list query's free text is searched in."""


class Status(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class Consent(StrEnum):
    """What the participants agreed to for a recording (``sql/009_consent.sql``; the rules: ``lib/consent.py``)."""

    INTERNAL = "internal"
    """The lab's own use only: no share link beyond the study's members. Every recording starts here."""
    SHAREABLE = "shareable"
    """Also sharing with collaborators: share links may be made."""
    WITHDRAWN = "withdrawn"
    """Withdrawn: the recording is being erased; a row says so only until its erasure finishes."""


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
    study_id: str | None = None
    """The study the recording goes into; None: the uploader's personal space."""


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
    ground_truth_name: str | None = None
    """The ground-truth file's original (sanitised) name; its format is read from it."""
    ground_truth_bytes: int = 0
    """Bytes the ground truth takes in storage (with a BIDS sidecar), counted in usage."""
    study_id: str | None = None
    """The study the recording belongs to; None: its uploader's personal space."""
    consent: Consent = Consent.INTERNAL
    consent_date: date | None = None
    """The date of the consent the recording is held under (the signed form's); None: not recorded."""

    @property
    def playback_key(self) -> str:
        """What a browser should play: the H.264 preview if there is one."""
        return self.preview_key or self.s3_key


class ErasureReason(StrEnum):
    """Why a recording was erased (a tombstone says which)."""

    WITHDRAWN = "withdrawn"
    """Its participant withdrew consent."""
    RETENTION = "retention"
    """Its study's retention period ran out and an owner confirmed the erasure."""


@dataclass(frozen=True)
class Tombstone:
    """What is kept of an erased recording: ids and dates, no personal data (the subject id is the lab's code)."""

    id: str
    study_id: str | None
    subject_id: str
    reason: ErasureReason
    erased_at: datetime
    erased_by: str


@dataclass(frozen=True)
class GroundTruthFile:
    """A ground-truth file stored beside a recording: its key, original name and bytes in storage."""

    key: str
    name: str
    size_bytes: int


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
    study_id: str | None = None
    """List this study's recordings (the caller must be a member); None: the caller's personal space."""


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


DAILY_HISTORY_DAYS = 62
"""Uploads of the last this many days are also counted per day: a history this short is charted by day
(per month it would be one or two dots)."""


def daily_history_start(today: date | None = None) -> date:
    """The first day (UTC) that :attr:`UsageSummary.by_day` covers."""
    return (today or datetime.now(UTC).date()) - timedelta(days=DAILY_HISTORY_DAYS - 1)


@dataclass(frozen=True)
class UsageSummary:
    """The caller's ready recordings, aggregated: totals, and buckets by upload day ("YYYY-MM-DD", UTC, only
    from :func:`daily_history_start` on) and month ("YYYY-MM") in date order, by content type, lossless and
    subject largest first, the largest records."""

    total_bytes: int
    total_count: int
    by_day: tuple[UsageBucket, ...]
    by_month: tuple[UsageBucket, ...]
    by_content_type: tuple[UsageBucket, ...]
    by_lossless: tuple[UsageBucket, ...]
    by_subject: tuple[UsageBucket, ...]
    largest: tuple[FileRecord, ...]
