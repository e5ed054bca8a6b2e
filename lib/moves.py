"""Moving a recording between spaces (a study, or its uploader's personal space) with its objects and its history.

The object keys carry the space (lib.keys) and the database checks every key against its row's space, so a move
moves bytes. It runs in this order, so that a failure at any step leaves the recording whole where it was and no
copy behind:

1. the rules are checked (the caller owns both spaces: lib.studies.may_move; the recording is stored; the target
   study has room, at a glance) and the recording's objects listed (every key its row names must be there);
   a refusal changes nothing;
2. every object under the record's folder (original, preview, thumbnail, ground truth and its sidecar, anything
   else) is copied by the bucket itself to the same path in the new space, and each copy is read back (HEAD) and
   compared with what was listed: size, and the ETag where S3 keeps it across a copy;
3. the server switches the row's space and keys in one step (ServerRecords.move; in the cloud sql/012_moves.sql's
   move_recording, which checks the rules and the target quota again under the study's lock);
4. the audit entries (one in each space's trail, both spaces in the detail) are written right after; if they
   cannot be, the switch is undone;
5. only then are the old objects deleted.

A failure in steps 2 to 4 deletes the copies again. A failure in step 5 leaves the recording moved and whole;
whatever the old folder still holds is named in the result and the log, for an administrator to delete.
The record id never changes, so the recording keeps its audit history, its analysis and its research fields.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from lib.audit import AuditAction, AuditEvent, AuditTrail
from lib.errors import IntegrityError, PulseVaultError, StorageError
from lib.keys import Owner, Space, ground_truth_keys, rebased_key, record_folder
from lib.library import same_user
from lib.records import Consent, FileRecord, Status
from lib.repository import Repository, ServerRecords
from lib.repository.base import KEY_KINDS, check_move, record_space, study_quota_exceeded
from lib.storage import ObjectInfo, ObjectStore
from lib.studies import Role, Study, may_move

log = logging.getLogger(__name__)

PERSONAL_SPACE = "personal space"
"""How a personal space is named where a study's name would stand (the audit detail, the move picker)."""


@dataclass(frozen=True)
class SpaceChoice:
    """A space a recording can be moved into: a study (its id and name) or (``study_id`` None) the personal one."""

    study_id: str | None
    name: str


@dataclass(frozen=True)
class MoveResult:
    record: FileRecord
    """The row as it is now, in its new space."""
    left_behind: tuple[str, ...]
    """Old keys the bucket would not delete after the move (the recording itself is whole in its new space)."""

    def summary(self) -> str:
        if not self.left_behind:
            return f"Moved {self.record.original_name}; its history moved with it."
        names = ", ".join(key.rsplit("/", 1)[-1] for key in self.left_behind)
        return (f"Moved {self.record.original_name}, but {len(self.left_behind)} old file(s) could not be removed "
                f"from its previous place ({names}, under {record_folder(self.left_behind[0])}); the recording is "
                "complete in its new place. Ask the administrator to delete those files.")


def move_targets(repo: Repository, record: FileRecord) -> list[SpaceChoice]:
    """The spaces the caller may move ``record`` (a row read through ``repo``) into, for the picker: none unless it
    is stored and the caller owns its space."""
    if record.status is not Status.READY or record.consent is Consent.WITHDRAWN:
        return []
    studies = repo.studies()
    roles = {s.id: s.role for s in studies}
    spaces = [SpaceChoice(None, PERSONAL_SPACE), *(SpaceChoice(s.id, s.name) for s in studies)]
    return [space for space in spaces
            if may_move(record.study_id, roles.get(record.study_id or ""), space.study_id,
                        roles.get(space.study_id or ""), uploader_id=record.user_id, caller_id=repo.user_id)]


def move_record(store: ObjectStore, repo: Repository, server: ServerRecords, record_id: str,
                study_id: str | None, *, trail: AuditTrail, study_quota_bytes: int) -> MoveResult:
    """Move the recording ``record_id`` into the study ``study_id`` (None: the uploader's personal space) with every
    object and its history; raises (in words) with the recording untouched where it was if it cannot."""
    same_user(repo, server)
    record = repo.get(record_id)  # NotFound for anyone else's id
    source_study = None if record.study_id is None else repo.study(record.study_id)
    target_study = None if study_id is None else repo.study(study_id)  # NotFound for a non-member
    check_move(record, (_role(source_study), _role(target_study)), _id(target_study), repo.user_id)
    _check_room(repo, record, target_study, study_quota_bytes)
    source = record_space(repo.user_id, record)
    target: Owner = repo.user_id if target_study is None else Space(repo.user_id, target_study.id)
    objects = _listed(store, source, record)
    copies = _copy_all(store, objects, source, target)
    try:
        moved = server.move(record.id, _id(target_study), _new_keys(record, source, target), study_quota_bytes)
    except PulseVaultError:
        _discard(store, target, copies)
        raise
    leaving, arriving = _entries(record, source_study, target_study, len(objects))
    trail.after(leaving, undo=lambda: _move_back(server, store, record, target, copies, study_quota_bytes),
                also=(arriving,))
    return MoveResult(moved, _delete_old(store, source, objects))


def _role(study: Study | None) -> Role | None:
    return None if study is None else study.role


def _id(study: Study | None) -> str | None:
    return None if study is None else study.id


def _name(study: Study | None) -> str:
    return PERSONAL_SPACE if study is None else study.name


def _check_room(repo: Repository, record: FileRecord, study: Study | None, quota: int) -> None:
    """QuotaExceeded before anything is copied when the target study's stored recordings leave no room (the
    server's switch checks again, pending uploads included, under the study's lock)."""
    if study is None:
        return
    held = sum(u.bytes for u in repo.study_usage() if u.study_id == study.id)
    size = record.size_bytes + record.ground_truth_bytes
    if held + size > quota:
        raise study_quota_exceeded(record.original_name, size, held, 0, quota)


def _listed(store: ObjectStore, source: Owner, record: FileRecord) -> list[ObjectInfo]:
    """Everything under the record's folder; StorageError if an object its row names is not there."""
    objects = list(store.iter_objects(record_folder(record.s3_key), owner=source))
    present = {info.key for info in objects}
    named = [record.s3_key, record.thumbnail_key, record.preview_key, *ground_truth_keys(record.ground_truth_key)]
    missing = [key.rsplit("/", 1)[-1] for key in named if key and key not in present]
    if missing:
        raise StorageError(f"{record.original_name} was not moved: storage lacks its {', '.join(missing)}. "
                           "Upload it again, or ask the administrator to check the bucket.")
    return objects


def _copy_all(store: ObjectStore, objects: list[ObjectInfo], source: Owner, target: Owner) -> list[str]:
    """Copy every object into ``target`` and check each copy; on any failure the copies made so far are deleted
    and the error raised."""
    copies: list[str] = []
    try:
        for info in objects:
            key = rebased_key(info.key, source, target)
            copies.append(key)
            _check_copy(info, store.copy(info, key, source_owner=source, target_owner=target))
    except PulseVaultError:
        _discard(store, target, copies)
        raise
    return copies


def _check_copy(original: ObjectInfo, copy: ObjectInfo) -> None:
    """IntegrityError unless the copy is the listed object: its size, and its ETag where a copy keeps it (a
    multipart object's ETag, ``…-N``, describes its parts, which a copy does not keep)."""
    same_etag = "-" in original.etag or "-" in copy.etag or original.etag == copy.etag
    if copy.size != original.size or not same_etag:
        raise IntegrityError(f"The copy of {original.key.rsplit('/', 1)[-1]} does not match the original "
                             f"({copy.size} of {original.size} bytes); nothing was moved. Try again.")


def _discard(store: ObjectStore, target: Owner, copies: list[str]) -> None:
    """Delete the copies of a move that did not happen (a copy may exist though its check failed)."""
    if not copies:
        return
    try:
        result = store.delete(copies, owner=target)
        left = [key for key, _ in result.errors]
    except PulseVaultError as exc:
        left = copies
        log.error("move: copies not deleted (%s)", type(exc).__name__)
    if left:
        log.error("move: %d copies of a move that did not happen are left under %s", len(left),
                  record_folder(copies[0]))


def _new_keys(record: FileRecord, source: Owner, target: Owner) -> dict[str, str | None]:
    old = _key_columns(record)
    return {column: None if key is None else rebased_key(key, source, target) for column, key in old.items()}


def _key_columns(record: FileRecord) -> dict[str, str | None]:
    """The record's keys by column (a FileRecord names its keys as the row's columns)."""
    return {column: getattr(record, column) for column in KEY_KINDS}


def _entries(record: FileRecord, source: Study | None, target: Study | None,
             objects: int) -> tuple[AuditEvent, AuditEvent]:
    """The move's entry in the source space's trail and in the target's, with the same detail."""
    detail: Mapping[str, object] = {"from": _id(source), "to": _id(target), "from_name": _name(source),
                                    "to_name": _name(target), "objects": objects}
    leaving = AuditEvent.about(AuditAction.MOVE, record, **detail)
    return leaving, AuditEvent(AuditAction.MOVE, _id(target), record.id, record.research.subject_id,
                               leaving.detail)


def _move_back(server: ServerRecords, store: ObjectStore, record: FileRecord, target: Owner, copies: list[str],
               study_quota_bytes: int) -> None:
    """Undo a switch whose audit entries could not be written: the row back to its space and keys, the copies
    deleted (the old objects were never touched)."""
    server.move(record.id, record.study_id, _key_columns(record), study_quota_bytes)
    _discard(store, target, copies)


def _delete_old(store: ObjectStore, source: Owner, objects: list[ObjectInfo]) -> tuple[str, ...]:
    """Delete the objects the recording had in its previous space; the keys that stayed (logged)."""
    try:
        result = store.delete([info.key for info in objects], owner=source)
    except PulseVaultError as exc:
        log.warning("move: the old objects were not deleted (%s)", type(exc).__name__)
        return tuple(info.key for info in objects)
    if result.errors:
        log.warning("move: %d old objects were not deleted under %s", len(result.errors),
                    record_folder(result.errors[0][0]))
    return tuple(key for key, _ in result.errors)
