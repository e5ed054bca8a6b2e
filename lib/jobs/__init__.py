"""Durable batch jobs on Ray: re-analyse, evaluate against ground truth, or regenerate previews and thumbnails
(:mod:`.derive`), many recordings at once (a user's
personal recordings, or a study's, under the study's row-level security).

* :mod:`.model` — a job and its recordings' results as values, the state machine, progress;
* :mod:`.store` — job rows (``sql/007_jobs.sql``; the demo's SQLite mirror), always for one owner;
* :mod:`.service` — what the app and scripts call: start, list (resuming driverless jobs), cancel;
* :mod:`.launch` — the app's background driver process (``python -m lib.jobs drain``);
* :mod:`.driver` — takes a job over, feeds the engine, writes each result with the owner's rights;
* :mod:`.engine` — Ray (imported only there, only when a job runs): local, or a configured cluster;
* :mod:`.backends` — what a driver process acts with.

The per-recording work is :func:`lib.checks.run.run_task` on an :class:`lib.checks.AnalysisTask` built by
:func:`lib.library.analysis_task_for`, exactly what My files' Re-analyse runs.
"""

from lib.jobs.model import ItemResult, ItemStatus, Job, JobKind, JobParameters, JobStatus, Progress
from lib.jobs.service import JobRequest, cancel_job, list_jobs, matching_ids, start_job
from lib.jobs.store import JobStore, SqliteJobs, SupabaseJobs

__all__ = ["ItemResult", "ItemStatus", "Job", "JobKind", "JobParameters", "JobRequest", "JobStatus", "JobStore",
           "Progress",
           "SqliteJobs", "SupabaseJobs", "cancel_job", "list_jobs", "matching_ids", "start_job"]
