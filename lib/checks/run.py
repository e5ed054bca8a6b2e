"""Run one task here and now (in a worker process, or a script): :func:`run_task`.

Imports what a check needs (OpenCV, NumPy, SciPy, the pipeline); the web process
never calls it, only the workers (:mod:`lib.checks.worker`) and scripts do.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lib import rppg
from lib.checks.values import UNEXPECTED_CHECK, AnalysisTask, CheckOutcome, CheckTask, Task, Verdict
from lib.errors import PulseVaultError, ValidationError
from lib.pipeline.check import PreparedRecording, check_recording
from lib.pipeline.limits import check_size
from lib.pipeline.progress import ProgressCallback, Reporter, Step
from lib.transfer import SignedDownload, download_signed
from lib.workspace import local_writes

log = logging.getLogger(__name__)


def run_task(task: Task, progress: ProgressCallback | None = None) -> CheckOutcome:
    """Run the task here and now; every ending is an outcome (nothing is raised for a failure)."""
    try:
        if isinstance(task, AnalysisTask):
            return CheckOutcome(Verdict.PASSED, analysis=_analyse(task, progress))
        return CheckOutcome(Verdict.PASSED, prepared=_check(task, progress))
    except ValidationError as exc:  # the file itself
        return CheckOutcome(Verdict.REFUSED, message=str(exc))
    except PulseVaultError as exc:  # the check could not run (disk full, storage down): check again
        return CheckOutcome.failed(str(exc))
    except Exception:
        log.exception("the check of a recording failed unexpectedly")
        return CheckOutcome.failed(UNEXPECTED_CHECK)


def _check(task: CheckTask, progress: ProgressCallback | None) -> PreparedRecording:
    path = task.path if task.source is None else _fetch(task.name, task.source, task.fetched_path, progress,
                                                        max_bytes=task.max_bytes)
    return check_recording(path, task.name, max_bytes=task.max_bytes, workdir=task.workdir, progress=progress,
                           analyse=task.analyse, band=task.band)


def _analyse(task: AnalysisTask, progress: ProgressCallback | None) -> rppg.AnalysisSummary:
    local = _fetch(task.name, task.source, task.fetched_path, progress)
    report = Reporter(progress)
    report.step(Step.ANALYSE)
    return rppg.analyse(local, method=task.method, lossless=task.lossless, ground_truth=task.ground_truth,
                        band=task.band,
                        progress=lambda fraction: report(Step.ANALYSE, fraction, 1.0))


def _fetch(name: str, source: SignedDownload, target: Path, progress: ProgressCallback | None, *,
           max_bytes: int | None = None) -> Path:
    if max_bytes is not None:
        check_size(name, source.size, max_bytes)  # before fetching gigabytes that would be refused
    report = Reporter(progress)
    report(Step.DOWNLOAD, 0, source.size, unit="bytes", force=True)
    with local_writes(name):  # a full disk while fetching is said as such
        target.parent.mkdir(parents=True, exist_ok=True)
        download_signed(source, target, progress=report.bytes(Step.DOWNLOAD))
    return target
