"""The body of one check worker process (started by :class:`lib.checks.pool.CheckPool`).

Importing this module imports everything a check needs (OpenCV, NumPy, SciPy, the
pipeline): the pool's ``forkserver`` preloads it once, so a new worker is a fork of
a process that has them already and starts in milliseconds, while the web
process's memory never holds a check's frames.

Protocol on the worker's end of its pipe: it receives ``(key, Task)`` or
``None`` (stop), and sends ``("progress", key, Progress)`` (``"pulse"`` for the
quick-look analysis) while a check runs and ``("done", key, CheckOutcome)`` when it
ends. It leads its own process group, so cancelling a check kills the worker
together with the ffmpeg it may be running.
"""

from __future__ import annotations

import contextlib
import os
from multiprocessing.connection import Connection

from lib.checks.run import run_task
from lib.checks.values import Task
from lib.pipeline.progress import Progress, Step

WORKER_NICENESS = 10
"""Where the idle scheduling class is missing (not Linux), workers still yield to the web process this much."""


class AppGone(BaseException):
    """The web process is gone (the pipe broke): stop at once. A BaseException, so no step turns it into a
    check failure (steps catch Exception, and OSError for the disk)."""


def serve(conn: Connection) -> None:
    """Run the checks sent down ``conn`` until told to stop or the web process is gone."""
    _settle()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        key, task = message
        try:
            _run(conn, key, task)
        except AppGone:
            return


def _run(conn: Connection, key: str, task: Task) -> None:
    def progress(report: Progress) -> None:
        _send(conn, ("pulse" if report.step is Step.ANALYSE else "progress", key, report))

    _send(conn, ("done", key, run_task(task, progress)))


def _send(conn: Connection, message: tuple) -> None:
    try:
        conn.send(message)
    except OSError:
        raise AppGone from None


def _settle() -> None:
    """Own process group (cancel kills the group), and only the CPU time the web process leaves.

    Linux's idle class (inherited by the FFmpeg a check starts) runs a check only when nothing else wants a
    core, so a researcher's click is served before a check's next frame; niceness alone still gave a check
    about a tenth of a busy core's time against the page runs (issue 23's load ratio)."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    if hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
