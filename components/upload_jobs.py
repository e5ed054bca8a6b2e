"""This browser session's upload jobs (:class:`lib.uploads.UploadJob`), kept in ``st.session_state``.

Only storage lives here: the jobs by id, the session's workspace of local
copies, and the queue of jobs whose store step the researcher asked for (run on
the next rerun, where the card can draw its progress). What a job is and how it
moves on is :mod:`lib.uploads`. Everything sits under user keys (:mod:`components.state_keys`), so
signing out forgets it; the local copies live in a :class:`lib.workspace.Workspace`
whose folder is removed when the session's state is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import streamlit as st

from components import state_keys
from components.context import get_services
from lib import uploads
from lib.errors import LocalDiskError
from lib.uploads import UploadJob
from lib.workspace import Workspace


class UploadedFileLike(Protocol):
    file_id: str
    name: str
    size: int

    def read(self, size: int = -1) -> bytes: ...
    def seek(self, offset: int, whence: int = 0) -> int: ...


def workspace() -> Workspace:
    if state_keys.UPLOAD_WORKSPACE not in st.session_state:
        st.session_state[state_keys.UPLOAD_WORKSPACE] = Workspace()
    return st.session_state[state_keys.UPLOAD_WORKSPACE]


def jobs() -> dict[str, UploadJob]:
    return st.session_state.setdefault(state_keys.UPLOAD_JOBS, {})


def get(job_id: str) -> UploadJob | None:
    return jobs().get(job_id)


def put(job: UploadJob) -> UploadJob:
    jobs()[job.id] = job
    return job


def sync(files: Iterable[UploadedFileLike]) -> list[UploadJob]:
    """Add newly dropped files (copied to local disk once), forget removed ones; return the current jobs.

    Each file the uploader holds is one job, keyed by the uploader's id for it: picking a file again
    is a new job. Which jobs outlive their file leaving the uploader is the job's own rule.
    """
    current = jobs()
    seen: set[str] = set()
    for file in files:
        seen.add(file.file_id)
        if file.file_id not in current:
            current[file.file_id] = _copied(file)
    for job_id in [i for i, job in current.items() if i not in seen and not job.keep_when_unpicked]:
        forget(job_id)
    return list(current.values())


def _copied(file: UploadedFileLike) -> UploadJob:
    """A new job with its local copy, or with the reason the copy could not be written."""
    try:
        path = workspace().save(file.file_id, file, file.name)
    except LocalDiskError as exc:
        return uploads.uncopied_job(file.file_id, file.name, file.size, str(exc))
    return uploads.local_job(file.file_id, file.name, file.size, path)


def forget(job_id: str) -> None:
    """The file left the uploader: its check stops (if it still waits or runs) and its local files go."""
    get_services().checks.forget(job_id)
    job = jobs().pop(job_id, None)
    if job is not None:
        uploads.release(job, workspace())
    unqueue(job_id)


def records_deleted(record_ids: Iterable[str]) -> None:
    """Records were deleted (My files): jobs that stored them stop saying they are stored."""
    for job in uploads.after_deletion(list(jobs().values()), record_ids):
        put(job)


def covering_browser_record(record_id: str) -> bool:
    """A job of this session is (still) finishing the browser upload of this record."""
    return any(job.covers_browser_record(record_id) for job in jobs().values())


def retired_record_ids() -> frozenset[str]:
    return uploads.retired_record_ids(jobs().values())


def job_to_retry(record_id: str) -> UploadJob | None:
    return uploads.job_to_retry(jobs().values(), record_id)


def queue(job_ids: Iterable[str]) -> None:
    pending = st.session_state.setdefault(state_keys.UPLOAD_QUEUE, [])
    pending.extend(i for i in job_ids if i not in pending)


def unqueue(job_id: str) -> None:
    pending = st.session_state.get(state_keys.UPLOAD_QUEUE, [])
    if job_id in pending:
        pending.remove(job_id)


def take_queued(job_id: str) -> bool:
    """True (once) if the store step of this job was asked for; it leaves the queue before it starts."""
    pending = st.session_state.get(state_keys.UPLOAD_QUEUE, [])
    if job_id not in pending:
        return False
    pending.remove(job_id)
    return True


def set_paired_truth(paired: dict[str, list[UploadedFileLike]]) -> None:
    """This run's folder pairing: job id → the ground-truth files that go with it."""
    st.session_state[state_keys.UPLOAD_FOLDER_TRUTH] = paired


def paired_truth(job_id: str) -> list[UploadedFileLike]:
    return st.session_state.get(state_keys.UPLOAD_FOLDER_TRUTH, {}).get(job_id, [])


def queued() -> tuple[str, ...]:
    return tuple(st.session_state.get(state_keys.UPLOAD_QUEUE, ()))
