"""The driver: takes a job over, hands its recordings to the engine a few at a time, writes each result with
the owner's rights, and ends the job.

Durable and idempotent: every result is in the job row (saved at least every :data:`SAVE_S`), so a driver that
dies loses only the recordings in flight, and the next driver (:func:`drive` again, after
:data:`lib.jobs.model.STALE_AFTER_S`) skips every recording already finished and any whose saved analysis is
still the one a job with the same parameters wrote. Each recording is read again as the owner right before its
link is signed and right before its result is written, so one deleted (or no longer the owner's) meanwhile ends
as ``deleted`` with nothing written. Links are signed only when a recording is submitted, so none waits in a
queue long enough to expire.

A job over a study (``Job.study_id``) reads and writes only that study's rows, and only while its owner holds
the member role (or owner) there: each read and each write asks the database again (the write in the same
statement). An owner removed from the study, or made a viewer, mid-job ends the job ``failed`` with the reason;
what was finished keeps its result, nothing else is written. Every analysis a job writes gets its audit entry
(re-analysed, with the job's id) as the job's owner, right after the write; if the entry cannot be written the
previous analysis is put back and the recording is reported failed (:class:`lib.audit.AuditTrail`). A
re-derivation's entry is written before its PUT links are signed (the objects it replaces cannot be put back):
no entry, no links.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from lib.audit import Actor, AuditAction, AuditEvent, AuditLog, AuditTrail
from lib.checks.values import AnalysisTask, Verdict
from lib.errors import (
    AuditUnavailable,
    EngineUnavailable,
    JobStateError,
    NotFound,
    PulseVaultError,
    StudyAccessLost,
    ValidationError,
)
from lib.jobs.derive import DeriveOutcome, DeriveTask, check_stored, derive_task, is_current
from lib.jobs.engine import Outcome, WorkerLost
from lib.jobs.model import (
    MAX_ATTEMPTS,
    ItemResult,
    ItemStatus,
    Job,
    JobKind,
    JobStatus,
    analysis_digest,
)
from lib.jobs.store import JobStore
from lib.keys import Owner, Space
from lib.library import DELETING, analysis_task_for
from lib.records import FileRecord, Status
from lib.repository import ServerRecords
from lib.storage import ObjectStore
from lib.study_evaluation import (
    ComparedRecording,
    GroupFigures,
    Grouping,
    Uncompared,
    compare_saved,
    group_figures,
)

log = logging.getLogger(__name__)

SAVE_S = 2.0
"""Results and the heartbeat are written this often (and the row read back, which is how a cancel reaches the
driver)."""
WAIT_S = 0.5
"""How long one wait for finished tasks lasts."""
IN_FLIGHT_PER_SLOT = 2
"""Tasks submitted per engine slot: one running and one ready to start, so a worker never idles on the driver."""

GONE = "The recording was deleted (or is no longer yours) before the job reached it; nothing was written."
GONE_WHILE_RUNNING = "The recording was deleted (or is no longer yours) while the job ran; nothing was written."
ACCESS_LOST = "Not run: the job stopped because its owner lost the member role in the study."
NO_TRUTH = "It has no ground truth to evaluate against."
CURRENT = "Its saved analysis is already current for these parameters."
CANCELLED = "The job was cancelled before this recording finished."
DERIVATIVES_CURRENT = "Its preview and thumbnail are already made from its current original."
NOT_STORED = "Its new preview or thumbnail is not in the bucket as the worker reported; nothing was recorded"


class Engine(Protocol):
    """What the driver needs of an engine (:class:`lib.jobs.engine.RayEngine`)."""

    @property
    def slots(self) -> int: ...
    def submit(self, task: AnalysisTask | DeriveTask) -> Any: ...
    def wait(self, handles: Sequence[Any], timeout_s: float) -> list[tuple[Any, Outcome | WorkerLost]]: ...
    def cancel(self, handles: Sequence[Any]) -> None: ...


@dataclass(frozen=True)
class OwnerBackends:
    """What a driver needs to act for one job's owner: the bucket, the owner's rows and jobs."""

    store: ObjectStore
    records: ServerRecords
    jobs: JobStore
    audit: AuditLog
    """Where each re-analysis's entry is written, as the owner (the server's insert, sql/008_audit.sql)."""
    workdir: Path | None = None
    """Where local workers fetch recordings to (None: the system's temporary folder)."""


@dataclass
class _InFlight:
    record_id: str
    task: AnalysisTask | DeriveTask


def drive(job_id: str, owner: OwnerBackends, engine: Engine) -> Job:
    """Run one job of ``owner`` to its end (finished or cancelled) and return it; refuses a job another
    driver is looking after (:class:`lib.errors.JobStateError`)."""
    job = owner.jobs.claim(job_id)
    log.info("job %s: %d of %d recordings left (driver run %d)", job.id, len(job.remaining), len(job.record_ids),
             job.driver_attempts)
    return _Run(job, owner, engine).run()


class _JobRows:
    """The rows one job may touch, as its owner: their personal ones, or (a study job) the study's while they may
    run jobs there. Every read and write goes through here."""

    def __init__(self, records: ServerRecords, study_id: str | None) -> None:
        self.records = records
        self.study_id = study_id

    @property
    def space(self) -> Owner:
        """Whose keys the job's links may be signed for."""
        user = self.records.user_id
        return user if self.study_id is None else Space(user, self.study_id)

    def get(self, record_id: str) -> FileRecord:
        if self.study_id is not None:
            return self.records.study_row(record_id, self.study_id)
        record = self.records.get(record_id)
        if record.study_id is not None:  # moved into a study since: not this personal job's any more
            raise NotFound(GONE_WHILE_RUNNING)
        return record

    def set_analysis(self, record_id: str, analysis: dict[str, Any] | None) -> FileRecord:
        if self.study_id is not None:
            return self.records.set_study_analysis(record_id, self.study_id, analysis)
        return self.records.set_analysis(record_id, analysis)

    def set_derivatives(self, record_id: str, thumbnail_key: str | None, preview_key: str | None) -> FileRecord:
        if self.study_id is not None:
            return self.records.set_study_derivatives(record_id, self.study_id, thumbnail_key, preview_key)
        return self.records.set_derivatives(record_id, thumbnail_key, preview_key)


class _Run:
    def __init__(self, job: Job, owner: OwnerBackends, engine: Engine) -> None:
        self.job = job
        self.owner = owner
        self.engine = engine
        self.rows = _JobRows(owner.records, job.study_id)
        self.trail = AuditTrail(owner.audit, Actor(job.user_id, job.owner_email))
        self.current = owner.jobs.current_digests(job.fingerprint, job.study_id)
        self.queue: deque[str] = deque(job.remaining)
        self.flight: dict[Any, _InFlight] = {}
        self.attempts: dict[str, int] = {}
        self.last_save = time.monotonic()
        self.access_lost: str | None = None
        """Why the owner may no longer run this job (a study job): the job stops at once."""

    def run(self) -> Job:
        while self.queue or self.flight:
            if self.job.status is JobStatus.CANCELLING:
                return self._cancel()
            self._fill()
            for handle, outcome in self.engine.wait(list(self.flight), WAIT_S):
                self._ended(self.flight.pop(handle), outcome)
            if self.access_lost is not None:
                return self._stop(ACCESS_LOST, error=self.access_lost)
            self._save_now_and_then()
        if self.job.status is JobStatus.CANCELLING:
            return self._cancel()
        return self.owner.jobs.finish(self.job, JobStatus.FINISHED, summary=self._summary())

    # --- feeding the engine ---

    def _fill(self) -> None:
        while self.queue and self.access_lost is None and len(self.flight) < self.engine.slots * IN_FLIGHT_PER_SLOT:
            record_id = self.queue.popleft()
            prepared = self._prepare(record_id)
            if isinstance(prepared, ItemResult):
                self._result(record_id, prepared)
            elif prepared is not None:
                self.flight[self.engine.submit(prepared)] = _InFlight(record_id, prepared)

    def _prepare(self, record_id: str) -> AnalysisTask | DeriveTask | ItemResult | None:
        """The task to submit, the recording's result when there is nothing to run, or None: it could not be
        signed now and waits at the back of the queue for another attempt."""
        record = self._read(record_id)
        if isinstance(record, ItemResult):
            return record
        if self.job.kind is JobKind.REDERIVE:
            return self._derive_task(record)
        if self.job.kind is JobKind.EVALUATE and not record.ground_truth_key:
            return ItemResult(ItemStatus.SKIPPED, message=NO_TRUTH)
        if (digest := analysis_digest(record.analysis)) and self.current.get(record_id) == digest:
            return ItemResult(ItemStatus.SKIPPED, message=CURRENT, digest=digest, hr_bpm=_hr(record.analysis))
        try:
            return analysis_task_for(self.owner.store, self.rows.space, record,
                                     method=self.job.parameters.method, band=self.job.parameters.band,
                                     parent=self.owner.workdir or tempfile.gettempdir())
        except ValidationError as exc:  # the recording itself (say, an unreadable ground truth): no retry
            return ItemResult(ItemStatus.FAILED, message=str(exc), attempts=self._attempt(record_id))
        except PulseVaultError as exc:  # the bucket could not be reached now: a counted attempt
            return self._retry_or_fail(record_id, str(exc))

    def _derive_task(self, record: FileRecord) -> DeriveTask | ItemResult | None:
        workdir = Path(self.owner.workdir or tempfile.gettempdir()) / f"pulsevault-derive-{uuid.uuid4().hex}"
        try:
            if is_current(self.owner.store, record, self.rows.space):
                return ItemResult(ItemStatus.SKIPPED, message=DERIVATIVES_CURRENT)
            # Written before the PUT links exist: the objects they replace cannot be put back.
            self.trail.before(AuditEvent.about(AuditAction.REDERIVE, record, job=self.job.id))
            return derive_task(self.owner.store, record, self.rows.space, workdir)
        except AuditUnavailable as exc:
            return ItemResult(ItemStatus.FAILED, message=str(exc), attempts=self._attempt(record.id))
        except PulseVaultError as exc:  # the original is not there, or the bucket cannot be reached now
            return self._retry_or_fail(record.id, str(exc))

    def _read(self, record_id: str, gone: str = GONE) -> FileRecord | ItemResult:
        """The owner's row now, or how the job ends for a recording that is gone, not stored, or no longer
        within the owner's reach (the whole job stops then)."""
        try:
            record = self.rows.get(record_id)
        except NotFound:
            return ItemResult(ItemStatus.DELETED, message=gone)
        except StudyAccessLost as exc:
            return self._lost(exc)
        if record.status is Status.READY:
            return record
        if (record.error or "").startswith(DELETING):
            return ItemResult(ItemStatus.DELETED, message=gone)
        return ItemResult(ItemStatus.FAILED, message=f"It is not a stored recording (its upload is {record.status}).")

    # --- outcomes ---

    def _ended(self, flight: _InFlight, outcome: Outcome | WorkerLost) -> None:
        shutil.rmtree(flight.task.workdir, ignore_errors=True)  # a killed local worker could not remove it
        record_id = flight.record_id
        if isinstance(outcome, DeriveOutcome):  # only a DeriveTask returns one
            result = self._derived(record_id, cast(DeriveTask, flight.task), outcome)
        elif isinstance(outcome, WorkerLost) or outcome.verdict is Verdict.FAILED:
            message = outcome.message if isinstance(outcome, WorkerLost) else (outcome.message or "it failed")
            result = self._retry_or_fail(record_id, message)
        elif outcome.verdict is Verdict.REFUSED or outcome.analysis is None:
            result = ItemResult(ItemStatus.FAILED, message=outcome.message or "It could not be analysed.",
                                attempts=self._attempt(record_id))
        else:
            result = self._save(record_id, outcome.analysis.to_json())
        if result is not None:
            self._result(record_id, result)

    def _retry_or_fail(self, record_id: str, message: str) -> ItemResult | None:
        attempts = self._attempt(record_id)
        if attempts < MAX_ATTEMPTS:
            log.info("job %s: recording %s, attempt %d failed (%s); trying again", self.job.id, record_id,
                     attempts, message)
            self.queue.append(record_id)
            return None
        return ItemResult(ItemStatus.FAILED, attempts=attempts,
                          message=f"Failed {attempts} times; the last time: {message}")

    def _attempt(self, record_id: str) -> int:
        self.attempts[record_id] = self.attempts.get(record_id, 0) + 1
        return self.attempts[record_id]

    def _save(self, record_id: str, analysis: dict[str, Any]) -> ItemResult:
        """Write the analysis and its audit entry (the previous analysis back if the entry fails)."""
        attempts = self._attempt(record_id)
        record = self._read(record_id, GONE_WHILE_RUNNING)
        if isinstance(record, ItemResult):
            return record
        try:
            saved = self.rows.set_analysis(record_id, analysis)
        except NotFound:
            return ItemResult(ItemStatus.DELETED, message=GONE_WHILE_RUNNING, attempts=attempts)
        except StudyAccessLost as exc:
            return self._lost(exc)
        params = self.job.parameters
        event = AuditEvent.about(AuditAction.REANALYSE, saved, job=self.job.id, method=params.method,
                                 band=list(params.band) if params.band else None, hr_bpm=_hr(analysis))
        try:
            self.trail.after(event, undo=lambda: self.rows.set_analysis(record_id, record.analysis))
        except AuditUnavailable as exc:
            return ItemResult(ItemStatus.FAILED, attempts=attempts, message=str(exc))
        return ItemResult(ItemStatus.DONE, attempts=attempts, digest=analysis_digest(analysis), hr_bpm=_hr(analysis))

    def _derived(self, record_id: str, task: DeriveTask, outcome: DeriveOutcome) -> ItemResult | None:
        """Check what the worker stored, then write the keys (facts) to the row; a recording gone meanwhile gets
        its new objects removed again."""
        if not outcome.ok:
            if outcome.refused:
                return ItemResult(ItemStatus.FAILED, message=outcome.message, attempts=self._attempt(record_id))
            return self._retry_or_fail(record_id, outcome.message)
        attempts = self._attempt(record_id)
        record = self._read(record_id, GONE_WHILE_RUNNING)
        if isinstance(record, ItemResult):
            self._discard(task)
            return record
        try:  # a missing object is NotFound too: the worker's claim failed, not the recording
            check_stored(self.owner.store, task, outcome, self.rows.space)
        except PulseVaultError as exc:
            return ItemResult(ItemStatus.FAILED, message=f"{NOT_STORED} ({exc})", attempts=attempts)
        preview_key = task.preview.key if task.preview is not None else record.preview_key
        try:
            self.rows.set_derivatives(record_id, task.thumbnail.key, preview_key)
        except NotFound:
            self._discard(task)
            return ItemResult(ItemStatus.DELETED, message=GONE_WHILE_RUNNING, attempts=attempts)
        except StudyAccessLost as exc:
            return self._lost(exc)
        return ItemResult(ItemStatus.DONE, attempts=attempts)

    def _discard(self, task: DeriveTask) -> None:
        keys = [task.thumbnail.key, *([task.preview.key] if task.preview is not None else [])]
        try:
            self.owner.store.delete(keys, owner=self.rows.space)
        except PulseVaultError as exc:  # reconciliation (lib.usage) finds what is left
            log.warning("job %s: derivatives of a deleted recording not removed: %s", self.job.id, exc)

    def _lost(self, exc: StudyAccessLost) -> ItemResult:
        self.access_lost = str(exc)
        return ItemResult(ItemStatus.CANCELLED, message=ACCESS_LOST)

    def _result(self, record_id: str, result: ItemResult) -> None:
        self.job = self.job.with_result(record_id, result)

    # --- the row ---

    def _save_now_and_then(self) -> None:
        if time.monotonic() - self.last_save >= SAVE_S:
            self.job = self.owner.jobs.save_progress(self.job)  # also the heartbeat, and reads a cancel
            self.last_save = time.monotonic()

    def _cancel(self) -> Job:
        return self._stop(CANCELLED)

    def _stop(self, message: str, error: str | None = None) -> Job:
        """End the job now: nothing in flight is written, every recording not finished is reported with
        ``message``; cancelled (asked to stop, or stopping already), or failed with ``error``."""
        self.engine.cancel(list(self.flight))
        for flight in self.flight.values():
            shutil.rmtree(flight.task.workdir, ignore_errors=True)
        for record_id in [*(f.record_id for f in self.flight.values()), *self.queue]:
            self.job = self.job.with_result(record_id, ItemResult(ItemStatus.CANCELLED, message=message))
        self.flight.clear()
        self.queue.clear()
        if error is None or self.job.status is JobStatus.CANCELLING:
            return self.owner.jobs.finish(self.job, JobStatus.CANCELLED, error=error)
        return self.owner.jobs.finish(self.job, JobStatus.FAILED, error=error)

    def _summary(self) -> dict[str, Any] | None:
        """An evaluation's figures over the job's recordings, as their analyses are saved now."""
        if self.job.kind is not JobKind.EVALUATE:
            return None
        compared = [c for record_id in self.job.record_ids for c in self._compared(record_id)]
        figures = group_figures(compared, Grouping.NONE)
        return {"compared": len({c.record_id for c in compared}), "figures": [_figure_json(f) for f in figures]}

    def _compared(self, record_id: str) -> tuple[ComparedRecording, ...]:
        """The recording's compared rows, one per method its saved analysis holds; none without a comparison."""
        result = self.job.results.get(record_id)
        if result is None or result.status not in (ItemStatus.DONE, ItemStatus.SKIPPED):
            return ()
        record = self._read(record_id)
        if isinstance(record, ItemResult) or not record.ground_truth_key:
            return ()
        found = compare_saved(record)
        return () if isinstance(found, Uncompared) else found


def _hr(analysis: dict[str, Any] | None) -> float | None:
    value = (analysis or {}).get("hr_bpm")
    return None if value is None else float(value)


def _figure_json(figures: GroupFigures) -> dict[str, Any]:
    m = figures.metrics
    return {"method": figures.method, "recordings": figures.recordings, "without_hr": figures.without_hr,
            "within_5_pct": figures.within_5_pct, "mae_bpm": m.mae_bpm if m else None,
            "rmse_bpm": m.rmse_bpm if m else None, "pearson_r": m.pearson_r if m else None}


def drain(owner_for: Callable[[str], OwnerBackends], unfinished: Callable[[], list[tuple[str, str]]],
          engine_factory: Callable[[], Engine]) -> list[Job]:
    """Drive every job no driver is looking after, one after another, until none is left (jobs started
    meanwhile included). The engine is made (a local Ray started) only when the first job is taken over; if it
    cannot be, that job fails with the reason. Returns the jobs driven."""
    engine: Engine | None = None
    driven: list[Job] = []
    tried: set[str] = set()
    while todo := [(j, u) for j, u in unfinished() if j not in tried]:
        job_id, user_id = todo[0]
        tried.add(job_id)
        owner = owner_for(user_id)
        try:
            if not owner.jobs.own(job_id).driverless():
                continue
            job = owner.jobs.claim(job_id)
        except (JobStateError, NotFound):  # another driver took it first, or it is gone
            continue
        try:
            engine = engine or engine_factory()
        except EngineUnavailable as exc:
            driven.append(owner.jobs.finish(job, JobStatus.FAILED, error=str(exc)))
            continue
        driven.append(_Run(job, owner, engine).run())
    return driven
