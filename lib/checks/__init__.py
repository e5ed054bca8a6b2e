"""Recording checks out of the web process: worker processes owned by the app, fairly shared.

* :mod:`.values` — one check as picklable values (the task, the outcome);
* :mod:`.run` — :func:`lib.checks.run.run_task` runs one anywhere (heavy: imported by workers and
  scripts, never by the web process);
* :mod:`.scheduler` — per-user queues served round-robin under a per-user and a total cap;
* :mod:`.worker` — a worker process's body (the forkserver preloads it with the check's libraries);
* :mod:`.pool` — :class:`CheckPool`: starts workers lazily, streams progress back, cancels, reports a
  worker that died, and lets idle workers exit so their memory returns.

The upload job (:mod:`lib.uploads`) builds the task and turns the outcome into its next state; the
duplicate lookup, which needs the user's repository, stays in the web process.
"""

from lib.checks.pool import CheckPool, CheckState, Phase
from lib.checks.scheduler import CheckLimits, FairQueue
from lib.checks.values import UNEXPECTED_CHECK, AnalysisTask, CheckOutcome, CheckTask, Task, Verdict

__all__ = [
    "UNEXPECTED_CHECK",
    "AnalysisTask",
    "CheckLimits",
    "CheckOutcome",
    "CheckPool",
    "CheckState",
    "CheckTask",
    "FairQueue",
    "Phase",
    "Task",
    "Verdict",
]
