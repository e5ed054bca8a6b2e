"""What a recording must pass before anything of it is stored: the size limit and duplicates.

One home for each rule: the checks, the upload and the browser uploads
(:mod:`lib.direct_upload`) all ask here. None of them reads the file. The
quota is not checked here but where it can hold: the pending row's reservation
(``ServerRecords.reserve``, atomic in the database; its message is
``lib.repository.base.quota_exceeded``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lib.errors import DuplicateRecording, FileTooLarge
from lib.keys import sanitize_filename
from lib.pipeline.progress import Reporter, Step
from lib.units import human_bytes

if TYPE_CHECKING:
    from lib.records import FileRecord
    from lib.repository import Repository


def check_size(name: str, size: int, max_bytes: int) -> None:
    """The upload limit: a file over ``max_bytes`` is refused before anything else is looked at."""
    if size > max_bytes:
        raise FileTooLarge(f"{sanitize_filename(name)} is {human_bytes(size)}, over the "
                           f"{human_bytes(max_bytes)} upload limit.")


def find_duplicate(sha256: str, repo: Repository, report: Reporter | None = None,
                   study_id: str | None = None) -> FileRecord | None:
    """The ready recording with these exact bytes in the space the upload goes to (the user's personal one,
    or ``study_id``'s), if any (a cheap indexed lookup)."""
    if report is not None:
        report.step(Step.DUPLICATES)
    existing = repo.find_ready_by_sha256(sha256, study_id)
    if report is not None:
        report.done(Step.DUPLICATES)  # a lookup has no measure of its own: its bar must not stay at 0%
    return existing


def duplicate_note(existing: FileRecord, name: str | None = None) -> str:
    """One sentence naming the stored copy (and the file, if given); the page adds the question
    (skip, or upload anyway), so it is asked once."""
    subject = name or "The same recording"
    uploaded = f"{existing.created_at:%Y-%m-%d %H:%M} UTC"
    return f"{subject} is already stored as {existing.original_name} (uploaded {uploaded})."


def check_not_duplicate(name: str, sha256: str, repo: Repository, report: Reporter | None = None,
                        study_id: str | None = None) -> None:
    """Raise :class:`DuplicateRecording` if these bytes are stored already in the space (checked again at
    upload time: the same file may sit twice in one batch)."""
    existing = find_duplicate(sha256, repo, report, study_id)
    if existing is not None:
        raise DuplicateRecording(duplicate_note(existing, name), existing.id)
