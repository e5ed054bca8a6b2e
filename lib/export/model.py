"""The values an export is made of: the layout asked for, what is exported, and the plan of every file.

A plan lists two kinds of files: :class:`ObjectFile` (a recording copied byte for byte from the bucket,
with the size, stored checksum and ETag seen when the plan was made) and :class:`MadeFile` (ground truth
converted into the layout's format, README, checksums and metadata, made in memory when the plan is built;
small). Nothing in a plan is a secret: keys are checked against the owner again when they are read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from lib.keys import Owner
from lib.records import ListQuery


class Layout(StrEnum):
    UBFC = "ubfc"
    BIDS = "bids"
    PLAIN = "plain"

    @property
    def label(self) -> str:
        return LAYOUT_LABELS[self]


LAYOUT_LABELS = {
    Layout.UBFC: "rPPG-Toolbox / UBFC-rPPG (subjectN/vid + ground_truth.txt)",
    Layout.BIDS: "BIDS-style (sub-*/ses-* with _physio.tsv.gz)",
    Layout.PLAIN: "Plain (original names, metadata CSV, analysis JSON)",
}
"""What the export dialog calls each layout."""


class Delivery(StrEnum):
    ZIP = "zip"
    """One zip streamed from the bucket through the app (a browser download)."""
    MANIFEST = "manifest"
    """A CSV of presigned links with a fetch script, for sets too big for one browser download."""


@dataclass(frozen=True)
class Selection:
    """What to export: the chosen record ids, or every recording matching My files' current filter."""

    record_ids: tuple[str, ...] = ()
    query: ListQuery | None = None

    def __post_init__(self) -> None:
        if bool(self.record_ids) == (self.query is not None):
            raise ValueError("A selection is either record ids or a filter, not both or neither")


@dataclass(frozen=True)
class ExportRequest:
    """What a user asks to export, and in which layout."""

    selection: Selection
    layout: Layout


@dataclass(frozen=True)
class ObjectFile:
    """A recording in the export, read from the bucket as it is."""

    path: str
    """Where it sits in the export, relative to its top folder."""
    key: str
    size: int
    sha256: str
    etag: str
    """The ETag the plan's HEAD saw: a later read of other bytes is refused (If-Match)."""
    name: str
    """The recording's original name, for messages."""
    record_id: str
    subject_id: str
    """The recording's subject field when the plan was made (its audit entry keeps it)."""


@dataclass(frozen=True)
class MadeFile:
    """A file made for the export (ground truth in the layout's format, README, checksums, metadata)."""

    path: str
    data: bytes = field(repr=False)
    record_id: str | None = None
    """The recording it belongs to (its ground truth, its analysis); None for files of the whole export."""

    @property
    def size(self) -> int:
        return len(self.data)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class ExportPlan:
    """Every file of one export, under the top folder ``root``, for the user ``owner``; its recordings all
    lie in ``space`` (the owner's personal space, or a study of theirs: one space per export)."""

    layout: Layout
    root: str
    owner: str
    space: Owner
    objects: tuple[ObjectFile, ...]
    made: tuple[MadeFile, ...]
    left_out: tuple[str, ...] = ()
    """Why some matching recordings are not in it (not stored yet, failed, kept back by consent), one sentence
    each."""
    delivery: Delivery = Delivery.ZIP

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.objects) + sum(f.size for f in self.made)

    @property
    def recording_count(self) -> int:
        return len(self.objects)

    @property
    def file_count(self) -> int:
        return len(self.objects) + len(self.made)

    @property
    def shared_files(self) -> tuple[str, ...]:
        """The files about the whole export (README, SHA256SUMS, mapping and metadata tables)."""
        return tuple(f.path for f in self.made if f.record_id is None)
