"""A batch job as values: its kind and parameters, its states and the only moves between them, each
recording's result, and the progress the Jobs page shows. Light on purpose (no Ray, no OpenCV): the web
process reads and renders these.

A job moves ``queued → running → finished``; ``cancelling`` is a running job asked to stop (its driver
ends it as ``cancelled``); ``failed`` is a job that could not run at all (the Ray cluster cannot be reached,
none of its recordings may be read). A running job whose driver died keeps its status: the next driver
takes it over (:data:`STALE_AFTER_S`) and skips every recording already finished.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from lib.errors import JobStateError, ValidationError

MAX_ATTEMPTS = 3
"""Runs of one recording (a failed run or a dead worker counts) before it is reported failed."""
STALE_AFTER_S = 60.0
"""A driver writes a heartbeat at least this often (a third of it); a job whose heartbeat is older has
lost its driver and may be taken over."""
HEARTBEAT_S = STALE_AFTER_S / 3
MAX_JOB_RECORDINGS = 100_000
"""A bound on one job's recording list (the row carries it)."""


class JobKind(StrEnum):
    REANALYSE = "reanalyse"
    """Run the quick look again with the job's method and band, and save it as each recording's analysis."""
    EVALUATE = "evaluate"
    """The same, over the recordings with ground truth, then the figures against it (lib.study_evaluation)."""
    REDERIVE = "rederive"
    """Make each recording's browser preview and thumbnail again from its original (lib.jobs.derive)."""


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FINISHED = "finished"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self in ENDED


ENDED = frozenset({JobStatus.CANCELLED, JobStatus.FINISHED, JobStatus.FAILED})
MOVES: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.RUNNING, JobStatus.CANCELLING, JobStatus.FINISHED, JobStatus.FAILED}),
    JobStatus.CANCELLING: frozenset({JobStatus.CANCELLED}),
    JobStatus.CANCELLED: frozenset(),
    JobStatus.FINISHED: frozenset(),
    JobStatus.FAILED: frozenset(),
}
"""The only moves a job makes (running → running: a new driver takes over one whose driver died)."""


def check_move(current: JobStatus, target: JobStatus) -> None:
    """Refuse a move the state machine does not allow, saying what the job is."""
    if target not in MOVES[current]:
        raise JobStateError(f"A {current} job cannot become {target}.")


class ItemStatus(StrEnum):
    """How the job ended for one recording."""

    DONE = "done"
    SKIPPED = "skipped"
    """Nothing to do: its saved analysis is already current, or (evaluate) it has no ground truth."""
    FAILED = "failed"
    DELETED = "deleted"
    """It was deleted (or is no longer the owner's) before or while the job ran: nothing was written."""
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class JobParameters:
    method: str = "POS"
    band: tuple[float, float] | None = None
    """The heart-rate band in Hz; None: lib.rppg's default (at rest)."""

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "band": list(self.band) if self.band else None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobParameters:
        band = data.get("band")
        return cls(method=str(data.get("method", "POS")),
                   band=None if not band else (float(band[0]), float(band[1])))


def fingerprint(kind: JobKind, parameters: JobParameters) -> str:
    """Equal for two jobs whose per-recording work is the same (an evaluation saves the same analysis a
    re-analysis with ground truth does, so both kinds share it; regenerating derivatives is other work)."""
    work = {"derive": True} if kind is JobKind.REDERIVE else parameters.to_json()
    return hashlib.sha256(json.dumps(work, sort_keys=True).encode()).hexdigest()[:32]


def analysis_digest(analysis: Mapping[str, Any] | None) -> str | None:
    """Which saved analysis a recording holds, so a later job can tell it is still the one it wrote.

    ``seconds_taken`` is left out: the same result takes a different time on every run.
    """
    if analysis is None:
        return None
    stable = {k: v for k, v in analysis.items() if k != "seconds_taken"}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ItemResult:
    status: ItemStatus
    attempts: int = 0
    message: str = ""
    digest: str | None = None
    hr_bpm: float | None = None
    finished_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        return {"status": str(self.status), "attempts": self.attempts, "message": self.message,
                "digest": self.digest, "hr_bpm": self.hr_bpm, "finished_at": self.finished_at.isoformat()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ItemResult:
        return cls(status=ItemStatus(data["status"]), attempts=int(data.get("attempts", 0)),
                   message=str(data.get("message", "")), digest=data.get("digest"),
                   hr_bpm=None if data.get("hr_bpm") is None else float(data["hr_bpm"]),
                   finished_at=datetime.fromisoformat(data["finished_at"]))


@dataclass(frozen=True)
class Job:
    id: str
    user_id: str
    kind: JobKind
    parameters: JobParameters
    fingerprint: str
    record_ids: tuple[str, ...]
    status: JobStatus
    results: Mapping[str, ItemResult]
    created_at: datetime
    error: str | None = None
    summary: Mapping[str, Any] | None = None
    driver_attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    study_id: str | None = None
    """The study whose recordings the job covers (its members see it); None: the owner's personal space."""
    owner_email: str = ""
    """Who started it, as the audit trail names them (the driver writes each re-analysis's entry as them)."""

    @property
    def remaining(self) -> tuple[str, ...]:
        """The recordings the job has not finished with, in its order."""
        return tuple(r for r in self.record_ids if r not in self.results)

    def count(self, status: ItemStatus) -> int:
        return sum(1 for r in self.results.values() if r.status is status)

    def driverless(self, now: datetime | None = None) -> bool:
        """Whether no driver is looking after this unfinished job (none started, or its heartbeat is stale)."""
        if self.status.ended:
            return False
        if self.heartbeat_at is None:
            return True
        return (now or datetime.now(UTC)) - self.heartbeat_at > timedelta(seconds=STALE_AFTER_S)

    def with_result(self, record_id: str, result: ItemResult) -> Job:
        if record_id not in self.record_ids:
            raise ValidationError("That recording is not part of this job.")
        return replace(self, results={**self.results, record_id: result})

    def progress(self, now: datetime | None = None) -> Progress:
        return job_progress(self, now or datetime.now(UTC))


@dataclass(frozen=True)
class Progress:
    """What the Jobs page says about a job: recordings finished, the rate and the time left."""

    finished: int
    total: int
    failed: int
    rate_per_min: float | None
    seconds_left: float | None

    @property
    def fraction(self) -> float:
        return self.finished / self.total if self.total else 1.0


def job_progress(job: Job, now: datetime) -> Progress:
    """Rate from the recordings this job finished since it started (skips are instant and left out)."""
    worked = [r for r in job.results.values() if r.status is not ItemStatus.SKIPPED]
    finished = len(job.results)
    rate = None
    if job.started_at is not None and worked:
        elapsed = ((job.finished_at or now) - job.started_at).total_seconds()
        rate = len(worked) / elapsed * 60.0 if elapsed > 0 else None
    left = len(job.record_ids) - finished
    seconds_left = None if job.status.ended else (left / rate * 60.0 if rate else None)
    return Progress(finished, len(job.record_ids), job.count(ItemStatus.FAILED), rate, seconds_left)


@dataclass(frozen=True)
class JobScope:
    """Where a new job's recordings lie and who starts it (from the verified session, or a script's --user)."""

    user_id: str
    owner_email: str = ""
    study_id: str | None = None
    """None: the owner's personal space."""


def new_job_values(job_id: str, scope: JobScope, kind: JobKind, parameters: JobParameters,
                   record_ids: tuple[str, ...]) -> dict[str, Any]:
    """The columns of a new (queued) job row; a job over no recordings is refused here."""
    unique = tuple(dict.fromkeys(record_ids))
    if not unique:
        raise ValidationError("A job needs at least one recording: select some, or change the filter.")
    if len(unique) > MAX_JOB_RECORDINGS:
        raise ValidationError(f"One job can cover at most {MAX_JOB_RECORDINGS:,} recordings; split it.")
    return {"id": job_id, "user_id": scope.user_id, "study_id": scope.study_id, "owner_email": scope.owner_email,
            "kind": str(kind), "parameters": parameters.to_json(), "fingerprint": fingerprint(kind, parameters),
            "record_ids": list(unique), "status": str(JobStatus.QUEUED), "results": {}}


def job_from_row(row: Mapping[str, Any]) -> Job:
    """A Job from a row as either store returns it (JSON already decoded)."""
    return Job(
        id=str(row["id"]), user_id=str(row["user_id"]), kind=JobKind(row["kind"]),
        parameters=JobParameters.from_json(row.get("parameters") or {}), fingerprint=row["fingerprint"],
        record_ids=tuple(str(r) for r in row["record_ids"]), status=JobStatus(row["status"]),
        results={k: ItemResult.from_json(v) for k, v in (row.get("results") or {}).items()},
        created_at=_time(row["created_at"]), error=row.get("error"), summary=row.get("summary"),
        driver_attempts=int(row.get("driver_attempts") or 0), started_at=_opt_time(row.get("started_at")),
        finished_at=_opt_time(row.get("finished_at")), heartbeat_at=_opt_time(row.get("heartbeat_at")),
        study_id=None if row.get("study_id") is None else str(row["study_id"]),
        owner_email=row.get("owner_email") or "",
    )


def counts(results: Mapping[str, ItemResult]) -> dict[str, int]:
    """The count columns the Jobs list reads without decoding every result."""
    statuses = [r.status for r in results.values()]
    return {"done_count": statuses.count(ItemStatus.DONE), "skipped_count": statuses.count(ItemStatus.SKIPPED),
            "failed_count": sum(1 for s in statuses if s in (ItemStatus.FAILED, ItemStatus.DELETED))}


def _time(value: str | datetime) -> datetime:
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _opt_time(value: str | datetime | None) -> datetime | None:
    return None if value is None else _time(value)
