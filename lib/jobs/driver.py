"""The driver: takes a job over, hands its recordings to the engine a few at a time, writes each result with
the owner's rights, and ends the job.

Durable and idempotent: every result is in the job row (saved at least every :data:`SAVE_S`), so a driver that
dies loses only the recordings in flight, and the next driver (:func:`drive` again, after
:data:`lib.jobs.model.STALE_AFTER_S`) skips every recording already finished and any whose saved analysis is
still the one a job with the same parameters wrote. Each recording is read again as the owner right before its
link is signed and right before its result is written, so one deleted (or no longer the owner's) meanwhile ends
as ``deleted`` with nothing written. Links are signed only when a recording is submitted, so none waits in a
queue long enough to expire.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lib.checks.values import AnalysisTask, CheckOutcome, Verdict
from lib.errors import EngineUnavailable, JobStateError, NotFound, PulseVaultError, ValidationError
from lib.jobs.engine import WorkerLost
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
NO_TRUTH = "It has no ground truth to evaluate against."
CURRENT = "Its saved analysis is already current for these parameters."
CANCELLED = "The job was cancelled before this recording finished."


class Engine(Protocol):
    """What the driver needs of an engine (:class:`lib.jobs.engine.RayEngine`)."""

    @property
    def slots(self) -> int: ...
    def submit(self, task: AnalysisTask) -> Any: ...
    def wait(self, handles: Sequence[Any], timeout_s: float) -> list[tuple[Any, CheckOutcome | WorkerLost]]: ...
    def cancel(self, handles: Sequence[Any]) -> None: ...


@dataclass(frozen=True)
class OwnerBackends:
    """What a driver needs to act for one job's owner: the bucket, the owner's rows and jobs."""

    store: ObjectStore
    records: ServerRecords
    jobs: JobStore
    workdir: Path | None = None
    """Where local workers fetch recordings to (None: the system's temporary folder)."""


@dataclass
class _InFlight:
    record_id: str
    task: AnalysisTask


def drive(job_id: str, owner: OwnerBackends, engine: Engine) -> Job:
    """Run one job of ``owner`` to its end (finished or cancelled) and return it; refuses a job another
    driver is looking after (:class:`lib.errors.JobStateError`)."""
    job = owner.jobs.claim(job_id)
    log.info("job %s: %d of %d recordings left (driver run %d)", job.id, len(job.remaining), len(job.record_ids),
             job.driver_attempts)
    return _Run(job, owner, engine).run()


class _Run:
    def __init__(self, job: Job, owner: OwnerBackends, engine: Engine) -> None:
        self.job = job
        self.owner = owner
        self.engine = engine
        self.current = owner.jobs.current_digests(job.fingerprint)
        self.queue: deque[str] = deque(job.remaining)
        self.flight: dict[Any, _InFlight] = {}
        self.attempts: dict[str, int] = {}
        self.last_save = time.monotonic()

    def run(self) -> Job:
        while self.queue or self.flight:
            if self.job.status is JobStatus.CANCELLING:
                return self._cancel()
            self._fill()
            for handle, outcome in self.engine.wait(list(self.flight), WAIT_S):
                self._ended(self.flight.pop(handle), outcome)
            self._save_now_and_then()
        if self.job.status is JobStatus.CANCELLING:
            return self._cancel()
        return self.owner.jobs.finish(self.job, JobStatus.FINISHED, summary=self._summary())

    # --- feeding the engine ---

    def _fill(self) -> None:
        while self.queue and len(self.flight) < self.engine.slots * IN_FLIGHT_PER_SLOT:
            record_id = self.queue.popleft()
            prepared = self._prepare(record_id)
            if isinstance(prepared, ItemResult):
                self._result(record_id, prepared)
            elif prepared is not None:
                self.flight[self.engine.submit(prepared)] = _InFlight(record_id, prepared)

    def _prepare(self, record_id: str) -> AnalysisTask | ItemResult | None:
        """The task to submit, the recording's result when there is nothing to run, or None: it could not be
        signed now and waits at the back of the queue for another attempt."""
        record = self._read(record_id)
        if isinstance(record, ItemResult):
            return record
        if self.job.kind is JobKind.EVALUATE and not record.ground_truth_key:
            return ItemResult(ItemStatus.SKIPPED, message=NO_TRUTH)
        if (digest := analysis_digest(record.analysis)) and self.current.get(record_id) == digest:
            return ItemResult(ItemStatus.SKIPPED, message=CURRENT, digest=digest, hr_bpm=_hr(record.analysis))
        try:
            return analysis_task_for(self.owner.store, self.owner.records.user_id, record,
                                     method=self.job.parameters.method, band=self.job.parameters.band,
                                     parent=self.owner.workdir or tempfile.gettempdir())
        except ValidationError as exc:  # the recording itself (say, an unreadable ground truth): no retry
            return ItemResult(ItemStatus.FAILED, message=str(exc), attempts=self._attempt(record_id))
        except PulseVaultError as exc:  # the bucket could not be reached now: a counted attempt
            return self._retry_or_fail(record_id, str(exc))

    def _read(self, record_id: str, gone: str = GONE) -> FileRecord | ItemResult:
        """The owner's row now, or how the job ends for a recording that is gone or not stored."""
        try:
            record = self.owner.records.get(record_id)
        except NotFound:
            return ItemResult(ItemStatus.DELETED, message=gone)
        if record.status is Status.READY:
            return record
        if (record.error or "").startswith(DELETING):
            return ItemResult(ItemStatus.DELETED, message=gone)
        return ItemResult(ItemStatus.FAILED, message=f"It is not a stored recording (its upload is {record.status}).")

    # --- outcomes ---

    def _ended(self, flight: _InFlight, outcome: CheckOutcome | WorkerLost) -> None:
        shutil.rmtree(flight.task.workdir, ignore_errors=True)  # a killed local worker could not remove it
        record_id = flight.record_id
        if isinstance(outcome, WorkerLost) or outcome.verdict is Verdict.FAILED:
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
        attempts = self._attempt(record_id)
        record = self._read(record_id, GONE_WHILE_RUNNING)
        if isinstance(record, ItemResult):
            return record
        try:
            self.owner.records.set_analysis(record_id, analysis)
        except NotFound:
            return ItemResult(ItemStatus.DELETED, message=GONE_WHILE_RUNNING, attempts=attempts)
        return ItemResult(ItemStatus.DONE, attempts=attempts, digest=analysis_digest(analysis), hr_bpm=_hr(analysis))

    def _result(self, record_id: str, result: ItemResult) -> None:
        self.job = self.job.with_result(record_id, result)

    # --- the row ---

    def _save_now_and_then(self) -> None:
        if time.monotonic() - self.last_save >= SAVE_S:
            self.job = self.owner.jobs.save_progress(self.job)  # also the heartbeat, and reads a cancel
            self.last_save = time.monotonic()

    def _cancel(self) -> Job:
        self.engine.cancel(list(self.flight))
        for flight in self.flight.values():
            shutil.rmtree(flight.task.workdir, ignore_errors=True)
        for record_id in [*(f.record_id for f in self.flight.values()), *self.queue]:
            self.job = self.job.with_result(record_id, ItemResult(ItemStatus.CANCELLED, message=CANCELLED))
        self.flight.clear()
        self.queue.clear()
        return self.owner.jobs.finish(self.job, JobStatus.CANCELLED)

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
            if not owner.jobs.get(job_id).driverless():
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
