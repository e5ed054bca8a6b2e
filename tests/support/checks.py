"""Driving checks in tests as the pages do: through the check workers (lib.checks), or here and now."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from lib import uploads
from lib.checks import CheckLimits, CheckPool
from lib.checks.run import run_task
from lib.library import reanalysis_task, save_reanalysis
from lib.pipeline import Backends, ProgressCallback
from lib.records import FileRecord
from lib.repository import Repository, ServerRecords
from lib.services import Services
from lib.storage import ObjectStore
from lib.uploads import JobStatus, UploadJob
from lib.workspace import Workspace
from tests.support.audit import trail_of

CHECK_TIMEOUT_S = 180.0


@pytest.fixture(scope="session")
def check_pool() -> Iterator[CheckPool]:
    """Real check workers (forkserver processes), shared by the session's tests."""
    pool = CheckPool(CheckLimits(total=2, per_user=2), idle_exit_s=10)
    yield pool
    pool.close()


def check_job(job: UploadJob, backends: Backends, workspace: Workspace, pool: CheckPool,
              progress: ProgressCallback | None = None) -> UploadJob:
    """Hand the job's check to the workers and poll it to its end, as the Upload page does; ``progress``
    gets every new report the page would have drawn."""
    deadline = time.monotonic() + CHECK_TIMEOUT_S
    job = uploads.check(job, backends, workspace, pool)
    shown: set[int] = set()
    while job.status is JobStatus.CHECKING:
        assert time.monotonic() < deadline, f"the check of {job.given_name} did not end"
        state = pool.state(job.id)
        for report in (state.progress, state.pulse) if state else ():
            if report is not None and id(report) not in shown and progress is not None:
                shown.add(id(report))
                progress(report)
        time.sleep(0.05)
        job = uploads.check(job, backends, workspace, pool)
    return job


def reanalyse_here(store: ObjectStore, repo: Repository, server: ServerRecords, record_id: str, *,
                   progress: ProgressCallback | None = None, **options: object) -> FileRecord:
    """My files' Re-analyse as a script runs it: signed, run in this process, saved."""
    task = reanalysis_task(store, repo, server, record_id, **options)
    return save_reanalysis(repo, server, record_id, task, run_task(task, progress), trail=trail_of(repo))


@contextmanager
def forked_checks(services: Services) -> Iterator[CheckPool]:
    """The running app's check workers, forked from this process while the block runs, so what a test
    monkeypatches (a fault injected into a check) reaches them; the app's own pool is back afterwards."""
    own = services.checks
    pool = CheckPool(own.limits, idle_exit_s=own.idle_exit_s, context=multiprocessing.get_context("fork"))
    object.__setattr__(services, "checks", pool)  # Services is frozen: one process-wide value, swapped here only
    try:
        yield pool
    finally:
        object.__setattr__(services, "checks", own)
        pool.close()
