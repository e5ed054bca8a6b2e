"""Jobs as the app (and a script) starts, lists and cancels them, for the signed-in user: the one lib call
behind each action of the Jobs page and My files' *Start a job*. Nothing here imports Ray or waits for work:
starting a job writes its row and makes sure a driver (:mod:`lib.jobs.launch`) is running.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from lib import rppg
from lib.errors import ValidationError
from lib.jobs.model import Job, JobKind, JobParameters
from lib.jobs.store import JobStore
from lib.library import iter_matching
from lib.records import FileRecord, ListQuery, Status
from lib.repository import Repository


class RecordReads(Protocol):
    """The user's rows, read as that user (a page's repository; a script reads as the server for the owner)."""

    user_id: str

    def get_many(self, record_ids: list[str]) -> list[FileRecord]: ...


DriverStarter = Callable[[], None]
"""Makes sure a driver runs (the app: :func:`lib.jobs.launch.ensure_driver` for its target)."""


@dataclass(frozen=True)
class JobRequest:
    """What to run over which recordings: the user's personal ones, or (``study_id``) a study's."""

    kind: JobKind
    parameters: JobParameters
    record_ids: Sequence[str]
    study_id: str | None = None
    owner_email: str = ""
    """The signed-in user's address, as the audit trail names the job's writes."""


def start_job(jobs: JobStore, repo: RecordReads, request: JobRequest, start_driver: DriverStarter) -> Job:
    """A queued job over the stored recordings among ``request.record_ids`` that lie in its space (the user's
    personal space, or the study: anything else is left out, as are unfinished uploads), and a driver to run it.
    Refused, with the reason, when none is left; over a study, unless the user is a member or owner there (the
    job store checks the role, the database again)."""
    if jobs.user_id != repo.user_id:
        raise ValidationError("These jobs belong to another session; sign in again.")
    kind = request.kind
    parameters = JobParameters(method=rppg.check_method(request.parameters.method), band=request.parameters.band)
    wanted = list(dict.fromkeys(request.record_ids))
    found = {r.id: r for r in repo.get_many(wanted)} if wanted else {}
    ready = [found[i] for i in wanted if i in found and found[i].status is Status.READY
             and found[i].study_id == request.study_id]
    if kind is JobKind.EVALUATE:
        ready = [r for r in ready if r.ground_truth_key]
        if wanted and not ready:
            raise ValidationError("None of these recordings has ground truth to evaluate against; attach it in "
                                  "My files first.")
    job = jobs.create(kind, parameters, tuple(r.id for r in ready), study_id=request.study_id,
                      owner_email=request.owner_email)
    start_driver()
    return job


def matching_ids(repo: Repository, query: ListQuery) -> list[str]:
    """The stored recordings matching My files' filters (every page; the personal space or ``query.study_id``'s),
    for a job over the filter."""
    filtered = replace(query, statuses=(Status.READY,), page=1)
    return [r.id for r in iter_matching(repo, filtered)]


def list_jobs(jobs: JobStore, start_driver: DriverStarter) -> list[Job]:
    """The user's newest jobs; if one has lost its driver (the app restarted), a driver is started to resume it."""
    listed = jobs.list()
    if any(j.driverless() for j in listed):
        start_driver()
    return listed


def cancel_job(jobs: JobStore, job_id: str) -> Job:
    """Ask a job to stop: a queued one is cancelled at once, a running one by its driver within seconds."""
    job = jobs.get(job_id)
    if job.status.ended:
        raise ValidationError(f"This job has already {job.status}.")
    return jobs.request_cancel(job_id)
