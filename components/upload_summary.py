"""The Upload page's toolbar (Upload all) and the summary of the batch."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import streamlit as st

from components import state_keys, upload_jobs
from components.tables import show_table
from lib.settings import Settings
from lib.units import human_bytes
from lib.uploads import JobStatus, UploadJob

IN_PROGRESS = (JobStatus.WAITING, JobStatus.CHECKING)
"""Statuses that say nothing happened yet: a batch of only these has no summary."""
REFUSED = (JobStatus.NOT_ACCEPTED, JobStatus.CHECK_FAILED)


def eligible(jobs: list[UploadJob], settings: Settings) -> list[UploadJob]:
    """Files "Upload all" would send: checked, not stored, no unresolved duplicate, consent given, and no
    unusable recording the researcher has not chosen to store."""
    return [j for j in jobs if j.ready_to_store(settings.require_consent)]


def render_toolbar(jobs: list[UploadJob], settings: Settings) -> None:
    ready = eligible(jobs, settings)
    waiting_consent = [j for j in jobs if j.storable and not j.consent_ok(settings.require_consent)]
    doubtful = [j for j in jobs if j.storable and not j.doubts_settled]
    left, right = st.columns([1, 3])
    left.button(
        f"Upload all ({len(ready)})", key=state_keys.UPLOAD_ALL, type="primary",
        icon=":material/cloud_upload:", disabled=not ready, on_click=_queue_all, args=(settings,),
        width="stretch",
    )
    waiting = []
    if waiting_consent:
        waiting.append(f"{len(waiting_consent)} file(s) wait for the consent confirmation.")
    if doubtful:
        waiting.append(f"{len(doubtful)} file(s) the quick look cannot use wait for “Store it anyway” on their "
                       "card.")
    if waiting:
        right.caption(" ".join(waiting))


def _queue_all(settings: Settings) -> None:
    # Evaluated when clicked, so it sees the jobs as the last run left them.
    upload_jobs.queue(j.id for j in eligible(list(upload_jobs.jobs().values()), settings))


def render_summary(jobs: list[UploadJob]) -> None:
    if not any(j.status not in IN_PROGRESS for j in jobs):
        return
    st.subheader("Summary")
    counts = Counter(j.status for j in jobs)
    stored = sum(j.record.size_bytes for j in jobs if j.status is JobStatus.READY and j.record is not None)
    refused = sum(counts[s] for s in REFUSED)
    ready, failed, not_accepted, other = st.columns(4)
    ready.metric("Ready", counts[JobStatus.READY], help=f"{human_bytes(stored)} stored in this batch.")
    failed.metric("Failed", counts[JobStatus.UPLOAD_FAILED])
    not_accepted.metric("Not accepted", refused)
    other.metric("Waiting or skipped", len(jobs) - counts[JobStatus.READY] - counts[JobStatus.UPLOAD_FAILED]
                 - refused)
    show_table(_rows(jobs))


def _rows(jobs: list[UploadJob]) -> pd.DataFrame:
    rows = []
    for job in jobs:
        duplicate = job.duplicate_note if job.status is JobStatus.ALREADY_STORED else ""
        rows.append({
            "File": job.display_name,
            "Status": job.status.value,
            "Size": human_bytes(job.record.size_bytes if job.record else job.size_bytes),
            "Record": job.record.id if job.status is JobStatus.READY and job.record else "",
            "Details": job.message or duplicate or "",
        })
    return pd.DataFrame(rows)
