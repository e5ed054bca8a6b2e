"""The engine jobs run on: Ray tasks, on a local Ray this process starts (the first time a job needs it) or on
an existing cluster (``[ray] address`` / ``RAY_ADDRESS``).

Ray is imported here and nowhere else, and only when :class:`RayEngine` is made: importing ``lib.jobs`` (the
app does) costs nothing. A task carries an :class:`lib.checks.AnalysisTask`, which holds a presigned GET for
the one original it reads and the parsed ground truth, or a :class:`lib.jobs.derive.DeriveTask` (that GET, and
a presigned PUT for each derivative it makes), never a secret; its outcome comes back here and the driver
writes it. A task is never retried by Ray (``max_retries=0``): the driver counts attempts itself, so a
dead worker is a counted, reported attempt (:data:`lib.jobs.model.MAX_ATTEMPTS`).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lib.checks.values import AnalysisTask, CheckOutcome
from lib.errors import EngineUnavailable
from lib.jobs.derive import DeriveOutcome, DeriveTask, derive_on_worker
from lib.settings import MIB, Settings

log = logging.getLogger(__name__)

OBJECT_STORE_BYTES = 80 * MIB
"""The local Ray's shared-memory object store: tasks and outcomes are kilobytes, and Ray refuses under 75 MiB."""
PROBE_TIMEOUT_S = 5.0
"""How long a configured cluster's address gets to accept a TCP connection before the job fails."""
DEFAULT_RAY_PORT = 6379
RAY_CLIENT_PORT = 10001
WORKER_NICENESS = 10
"""Local workers yield the CPU to the web process, like the check workers."""
LIB_DIR = Path(__file__).resolve().parents[1]
Outcome = CheckOutcome | DeriveOutcome
"""What a task returns: a re-analysis's (or evaluation's) outcome, or a re-derivation's."""


@dataclass(frozen=True)
class WorkerLost:
    """A task whose worker died (or was cancelled) before it returned an outcome."""

    message: str


@dataclass(frozen=True)
class EngineConfig:
    address: str | None
    """An existing Ray cluster (``host:port`` or ``ray://host:port``); None: start one on this machine."""
    num_cpus: int
    """The local Ray's worker slots (ignored for a cluster, which has its own)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        return cls(address=settings.ray_address, num_cpus=settings.job_cpus or os.cpu_count() or 1)


def probe(address: str) -> None:
    """Fail fast, with a message, when nothing listens at a cluster's address (Ray itself retries for minutes)."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    port = parts.port or (RAY_CLIENT_PORT if parts.scheme == "ray" else DEFAULT_RAY_PORT)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=PROBE_TIMEOUT_S):
            return
    except OSError as exc:
        raise EngineUnavailable(
            f"The Ray cluster at {address} cannot be reached ({exc.strerror or exc}). Check [ray] address "
            "(or RAY_ADDRESS) and that the cluster is up, then resume the job.") from None


def analyse_on_worker(task: AnalysisTask) -> CheckOutcome:
    """One recording's quick look on a Ray worker: :func:`lib.checks.run.run_task`, the function the app's
    check workers run, so a batch result equals My files' Re-analyse. Its folder goes either way."""
    from lib.checks.run import run_task

    _settle()
    try:
        return run_task(task)
    finally:
        shutil.rmtree(task.workdir, ignore_errors=True)


def derive_remote(task: DeriveTask) -> DeriveOutcome:
    """One recording's preview and thumbnail on a Ray worker (:func:`lib.jobs.derive.derive_on_worker`)."""
    _settle()
    return derive_on_worker(task)


_settled = False


def _settle() -> None:
    """Once per worker process: lower priority, and one core per task (the slot Ray gave it), so two workers
    on two cores do not fight over OpenCV's thread pools or FFmpeg's decoding threads (lib.rppg.frames asks
    for as many as OpenCV's)."""
    global _settled
    if not _settled:
        _settled = True
        import cv2

        cv2.setNumThreads(1)
        try:  # at least WORKER_NICENESS, not 10 more than a driver that is niced already (the app's is)
            os.setpriority(os.PRIO_PROCESS, 0, max(os.getpriority(os.PRIO_PROCESS, 0), WORKER_NICENESS))
        except OSError:
            log.debug("this worker's priority cannot be lowered")


class RayEngine:
    """Ray, connected (or started) when made; :meth:`close` shuts down a Ray it started."""

    def __init__(self, config: EngineConfig) -> None:
        import ray

        self._ray = ray
        self._started_here = not ray.is_initialized()
        try:
            if config.address:
                probe(config.address)
                ray.init(address=config.address, log_to_driver=False, configure_logging=False,
                         runtime_env={"py_modules": [str(LIB_DIR)]})
            elif self._started_here:
                ray.init(num_cpus=config.num_cpus, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES,
                         log_to_driver=False, configure_logging=False)
        except EngineUnavailable:
            raise
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError... all mean "no engine"
            raise EngineUnavailable(f"Ray could not be started or reached: {exc}") from None
        self._remote = ray.remote(num_cpus=1, max_retries=0)(analyse_on_worker)
        self._derive = ray.remote(num_cpus=1, max_retries=0)(derive_remote)

    @property
    def slots(self) -> int:
        """Tasks that can run at once (the cluster's CPUs)."""
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def submit(self, task: AnalysisTask | DeriveTask) -> Any:
        return self._derive.remote(task) if isinstance(task, DeriveTask) else self._remote.remote(task)

    def wait(self, handles: Sequence[Any], timeout_s: float) -> list[tuple[Any, Outcome | WorkerLost]]:
        """The handles that ended within ``timeout_s``, each with its outcome (or why there is none)."""
        if not handles:
            return []
        ready, _ = self._ray.wait(list(handles), num_returns=len(handles), timeout=timeout_s)
        return [(handle, self._outcome(handle)) for handle in ready]

    def _outcome(self, handle: Any) -> Outcome | WorkerLost:
        try:
            return self._ray.get(handle)
        except self._ray.exceptions.RayError as exc:
            log.warning("a job task ended without an outcome: %s", type(exc).__name__)
            return WorkerLost(f"its Ray worker stopped before it finished ({type(exc).__name__})")

    def cancel(self, handles: Sequence[Any]) -> None:
        for handle in handles:
            try:
                self._ray.cancel(handle, force=True)
            except Exception as exc:  # already finished, or its worker already gone
                log.debug("cancelling a job task: %s", exc)

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()
