"""The upload job: its states and transitions (:mod:`.job`) and the steps that move it on (:mod:`.steps`).

Used by every page that uploads: the Upload card, the Large files tab and My files' Retry.
The steps themselves (checks, storing, clean-up) are :mod:`lib.pipeline`.
"""

from lib.uploads.job import (
    BROWSER_JOB_PREFIX,
    DISMISSED,
    GONE,
    STORABLE,
    JobStatus,
    UploadJob,
    browser_job,
    local_job,
    uncopied_job,
)
from lib.uploads.steps import (
    RECHECK_STORED_S,
    after_deletion,
    check,
    confirm_stored,
    dismiss,
    job_to_retry,
    release,
    retired_record_ids,
    retry_failed,
    store,
)

__all__ = [
    "BROWSER_JOB_PREFIX",
    "DISMISSED",
    "GONE",
    "RECHECK_STORED_S",
    "STORABLE",
    "JobStatus",
    "UploadJob",
    "after_deletion",
    "browser_job",
    "check",
    "confirm_stored",
    "dismiss",
    "job_to_retry",
    "local_job",
    "release",
    "retired_record_ids",
    "retry_failed",
    "store",
    "uncopied_job",
]
