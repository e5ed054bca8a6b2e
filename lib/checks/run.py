"""Run one check here and now (in a worker process, or a script): :func:`run_check`.

Imports what a check needs (OpenCV, NumPy, SciPy, the pipeline); the web process
never calls it, only the workers (:mod:`lib.checks.worker`) and scripts do.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lib.checks.values import UNEXPECTED_CHECK, CheckOutcome, CheckTask, Verdict
from lib.errors import PulseVaultError, ValidationError
from lib.pipeline.check import check_recording
from lib.pipeline.limits import check_size
from lib.pipeline.progress import ProgressCallback, Reporter, Step
from lib.transfer import SignedDownload, download_signed
from lib.workspace import local_writes

log = logging.getLogger(__name__)

def run_check(task: CheckTask, progress: ProgressCallback | None = None) -> CheckOutcome:
    """Run the check here and now; every ending is an outcome (nothing is raised for a failure)."""
    try:
        path = task.path if task.source is None else _fetch(task, task.source, progress)
        prepared = check_recording(path, task.name, max_bytes=task.max_bytes, workdir=task.workdir,
                                   progress=progress, analyse=task.analyse)
    except ValidationError as exc:  # the file itself
        return CheckOutcome(Verdict.REFUSED, message=str(exc))
    except PulseVaultError as exc:  # the check could not run (disk full, storage down): check again
        return CheckOutcome.failed(str(exc))
    except Exception:
        log.exception("the check of a recording failed unexpectedly")
        return CheckOutcome.failed(UNEXPECTED_CHECK)
    return CheckOutcome(Verdict.PASSED, prepared=prepared)


def _fetch(task: CheckTask, source: SignedDownload, progress: ProgressCallback | None) -> Path:
    check_size(task.name, source.size, task.max_bytes)  # before fetching gigabytes that would be refused
    report = Reporter(progress)
    report(Step.DOWNLOAD, 0, source.size, unit="bytes", force=True)
    with local_writes(task.name):  # a full disk while fetching is said as such
        task.workdir.mkdir(parents=True, exist_ok=True)
        download_signed(source, task.fetched_path, progress=report.bytes(Step.DOWNLOAD))
    return task.fetched_path
