"""The steps an upload runs: a recording becomes a ``ready`` record, or leaves nothing half-stored.

* :mod:`.check` — the heavy check of a local file (validate, probe, thumbnail,
  preview, sha256, quick look); stores nothing, needs no server.
* :mod:`.limits` — size limit and duplicates: one home each (the quota is the
  pending row's reservation, ``lib.repository.ServerRecords.reserve``).
* :mod:`.backends` — what an upload runs against: settings, bucket, the session's rows both ways.
* :mod:`.store` — store a new local recording (its original and derivatives).
* :mod:`.finish` — finish one whose original is already in the bucket (browser upload).
* :mod:`.send` — the steps both share: send files, verify, mark ready.
* :mod:`.cleanup` — what a failure or a discard removes.
* :mod:`.progress` — the steps' names and progress reports.

The upload *job* (which step is next, which record id an attempt writes) is
:mod:`lib.uploads`; this package only runs steps.
"""

from lib.pipeline.backends import Backends
from lib.pipeline.check import PreparedRecording, check_recording, discard, sha256_file
from lib.pipeline.cleanup import INTERRUPTED, clean_up_failure, remove_unfinished
from lib.pipeline.finish import OriginalInBucket, finish_in_bucket
from lib.pipeline.limits import check_size, duplicate_note, find_duplicate
from lib.pipeline.progress import STEP_LABELS, Progress, ProgressCallback, Reporter, Step
from lib.pipeline.store import Attempt, process_upload, store_recording

__all__ = [
    "INTERRUPTED",
    "STEP_LABELS",
    "Attempt",
    "Backends",
    "OriginalInBucket",
    "PreparedRecording",
    "Progress",
    "ProgressCallback",
    "Reporter",
    "Step",
    "check_recording",
    "check_size",
    "clean_up_failure",
    "discard",
    "duplicate_note",
    "find_duplicate",
    "finish_in_bucket",
    "process_upload",
    "remove_unfinished",
    "sha256_file",
    "store_recording",
]
