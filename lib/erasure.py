"""Erasing recordings for good: a participant's withdrawal, and a study's retention period running out.

One path, :func:`erase_record`, for both; it runs in this order, so that a failure part-way leaves nothing
half-written and can simply be run again:

1. the caller's right is checked (the uploader or a study owner: lib.consent) and the record's objects listed;
   a refusal or an unreachable store changes nothing;
2. the row is marked withdrawn (final, the database keeps it so) and failed: from this moment it is never
   played, shared or counted as ready again;
3. every object under the record's key prefix is deleted (original, preview, thumbnail, ground truth and its
   sidecar, anything a broken upload left there);
4. the bucket is listed again under that prefix: anything still there is named in the error and the row stays
   withdrawn, so the next attempt (Withdraw again) picks up where this one stopped;
5. only then the row is deleted and its tombstone written, in one database transaction.

The analysis lives in the row, so it goes with it. The audit trail's entry is written before step 2 (no entry,
no erasure), once per attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lib.audit import AuditAction, AuditEvent, AuditTrail
from lib.consent import may_manage_consent
from lib.errors import AccessDenied, PulseVaultError, StorageError, ValidationError
from lib.keys import Owner, record_folder
from lib.library import iter_matching, object_keys, same_user
from lib.records import ErasureReason, FileRecord, ListQuery, Status, Tombstone
from lib.repository import Repository, ServerRecords
from lib.repository.base import record_space
from lib.storage import ObjectStore
from lib.studies import Action, Study, require
from lib.units import counted

log = logging.getLogger(__name__)

WITHDRAWING = "Consent withdrawn: being erased. If this stays, the erasure did not finish; withdraw it again."
"""The reason a row carries from the erasure's first step until its last; seen only if the erasure stopped."""
LEFT_NAMED = 5
"""How many leftover objects an unfinished erasure names (the rest are counted)."""
RETAINED_STATUSES = (Status.READY, Status.FAILED)
"""What a retention sweep erases: stored and failed recordings; a pending one is an upload still running."""


class ErasureIncomplete(StorageError):
    """The bucket still holds objects of a recording being erased; the row stays withdrawn for a retry."""

    def __init__(self, name: str, left: tuple[str, ...]) -> None:
        shown = ", ".join(key.rsplit("/", 1)[-1] for key in left[:LEFT_NAMED])
        more = f" and {len(left) - LEFT_NAMED} more" if len(left) > LEFT_NAMED else ""
        super().__init__(f"{name} is not erased yet: {len(left)} file(s) are still in storage ({shown}{more}). "
                         "It stays marked withdrawn and is never shared or played; withdraw it again to finish.")
        self.left = left


def withdraw(store: ObjectStore, repo: Repository, server: ServerRecords, record_id: str, *,
             trail: AuditTrail) -> Tombstone:
    """A participant withdrew: erase the recording everywhere and keep its tombstone. Raises (in words) if it
    could not finish, after which running it again finishes it."""
    return erase_record(store, repo, server, repo.get(record_id), ErasureReason.WITHDRAWN, trail=trail)


def erase_record(store: ObjectStore, repo: Repository, server: ServerRecords, record: FileRecord,
                 reason: ErasureReason, *, trail: AuditTrail) -> Tombstone:
    """Erase ``record`` (a row just read through ``repo``, never one handed in), verified against the bucket."""
    same_user(repo, server)
    _check_may_erase(repo, record)
    owner = record_space(repo.user_id, record)
    keys = object_keys(store, owner, record)  # refuses keys outside the record's space before anything changes
    trail.before(AuditEvent.about(AuditAction.ERASE, record, reason=str(reason), objects=len(keys)))
    server.mark_withdrawn(record.id, WITHDRAWING)
    try:
        result = store.delete(keys, owner=owner)
    except PulseVaultError as exc:
        raise StorageError(f"{record.original_name} is not erased yet: {exc} It stays marked withdrawn; "
                           "withdraw it again to finish.") from exc
    if result.errors:
        log.warning("erasing record %s: %d object(s) not deleted", record.id, len(result.errors))
    _check_nothing_left(store, owner, record)
    return server.erase(record.id, reason)


def _check_may_erase(repo: Repository, record: FileRecord) -> None:
    role = None if record.study_id is None else repo.study(record.study_id).role
    if not may_manage_consent(record, role, repo.user_id):
        raise AccessDenied("Only the recording's uploader or an owner of its study withdraws it.")
    if record.status is Status.PENDING:
        raise ValidationError(f"{record.original_name} is still uploading; withdraw it once the upload has "
                              "finished (or discard the unfinished upload).")


def _check_nothing_left(store: ObjectStore, owner: Owner, record: FileRecord) -> None:
    """The bucket, asked afresh, holds nothing under the record's prefix; else ErasureIncomplete naming it."""
    left = tuple(info.key for info in store.iter_objects(record_folder(record.s3_key), owner=owner))
    if left:
        raise ErasureIncomplete(record.original_name, left)


# --- retention -----------------------------------------------------------------------------------------


def retention_cutoff(study: Study, now: datetime | None = None) -> datetime | None:
    """Recordings uploaded before this moment are past the study's retention period (None: it has none)."""
    if study.retention_days is None:
        return None
    return (now or datetime.now(UTC)) - timedelta(days=study.retention_days)


def past_retention(repo: Repository, study_id: str, *, now: datetime | None = None) -> list[FileRecord]:
    """The study's recordings uploaded longer ago than its retention period, oldest first (owners only).

    Whole days: a recording is listed once the whole day it was uploaded on is past the period, never early."""
    study = repo.study(study_id)
    require(study.role, Action.MANAGE_MEMBERS)
    cutoff = retention_cutoff(study, now)
    if cutoff is None:
        return []
    query = ListQuery(study_id=study.id, statuses=RETAINED_STATUSES, date_to=cutoff.date() - timedelta(days=1),
                      sort="created_at", descending=False)
    return list(iter_matching(repo, query))


@dataclass(frozen=True)
class ErasureFailure:
    record_id: str
    name: str
    reason: str


@dataclass(frozen=True)
class ErasureReport:
    erased: tuple[Tombstone, ...]
    failed: tuple[ErasureFailure, ...]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        done = f"Erased {counted(len(self.erased), 'recording')}; a tombstone keeps each."
        if self.ok:
            return done
        details = "; ".join(f"{f.name}: {f.reason}" for f in self.failed)
        return f"{done} {len(self.failed)} could not be erased completely and stay withdrawn ({details})"


def erase_past_retention(store: ObjectStore, repo: Repository, server: ServerRecords, study_id: str, *,
                         trail: AuditTrail, now: datetime | None = None,
                         progress: Callable[[int, int], None] | None = None) -> ErasureReport:
    """Erase every recording :func:`past_retention` lists, each verified as :func:`erase_record` does; one failing
    does not stop the others, and running it again retries those."""
    erased: list[Tombstone] = []
    failed: list[ErasureFailure] = []
    records = past_retention(repo, study_id, now=now)
    for index, record in enumerate(records, start=1):
        try:
            erased.append(erase_record(store, repo, server, record, ErasureReason.RETENTION, trail=trail))
        except PulseVaultError as exc:
            failed.append(ErasureFailure(record.id, record.original_name, str(exc)))
        if progress is not None:
            progress(index, len(records))
    return ErasureReport(tuple(erased), tuple(failed))
