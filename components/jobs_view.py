"""Batch jobs on screen: the Jobs page's list with live progress, per-recording errors and cancel, and My
files' *Batch job* form that starts one over the selection or the filter."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from components import state_keys
from components.context import UserContext, user_context
from components.feedback import notify, user_errors
from components.text import literal
from lib.jobs import ItemStatus, Job, JobKind, JobParameters, JobStatus, cancel_job, list_jobs, matching_ids, start_job
from lib.records import FileRecord, ListQuery
from lib.rppg import METHODS
from lib.units import counted, human_duration

REFRESH_S = 2.0
"""How often the list redraws while a job runs."""
KIND_LABELS = {JobKind.REANALYSE: "Re-analyse", JobKind.EVALUATE: "Evaluate against ground truth"}
STATUS_ICONS = {JobStatus.QUEUED: ":material/schedule:", JobStatus.RUNNING: ":material/sync:",
                JobStatus.CANCELLING: ":material/pending:", JobStatus.CANCELLED: ":material/block:",
                JobStatus.FINISHED: ":material/check_circle:", JobStatus.FAILED: ":material/error:"}
PROBLEMS = (ItemStatus.FAILED, ItemStatus.DELETED)
SCOPE_SELECTED = "Selected recordings"
SCOPE_FILTER = "Every stored recording matching the filters"


# --- the Jobs page -------------------------------------------------------------------------------------------


def render_jobs() -> None:
    """The list; redrawn every :data:`REFRESH_S` while any job is unfinished."""
    ctx = user_context()
    jobs = None
    with user_errors("Loading your jobs"):
        jobs = list_jobs(ctx.jobs, ctx.services.start_job_driver)
    if jobs is None:
        return
    if not jobs:
        st.info("No jobs yet. In My files, select recordings (or filter them) and start a batch job.",
                icon=":material/work_history:")
        return
    if any(not j.status.ended for j in jobs):
        _live(ctx)
    else:
        _render_all(jobs, ctx)


@st.fragment(run_every=REFRESH_S)
def _live(ctx: UserContext) -> None:
    with user_errors("Loading your jobs"):
        jobs = ctx.jobs.list()
        _render_all(jobs, ctx)
        if all(j.status.ended for j in jobs):  # nothing left to follow: the page stops redrawing
            st.rerun()


def _render_all(jobs: Sequence[Job], ctx: UserContext) -> None:
    for job in jobs:
        with st.container(border=True):
            _render_job(job, ctx)


def _render_job(job: Job, ctx: UserContext) -> None:
    title, action = st.columns([5, 1], vertical_alignment="center")
    params = job.parameters
    band = f", {params.band[0]:g}–{params.band[1]:g} Hz" if params.band else ""
    title.markdown(f"{STATUS_ICONS[job.status]} **{KIND_LABELS[job.kind]}** · {params.method}{band} · "
                   f"{counted(len(job.record_ids), 'recording')} · *{job.status}* · "
                   f"started {job.created_at:%Y-%m-%d %H:%M} UTC")
    if not job.status.ended:
        action.button("Cancel", key=state_keys.job_cancel(job.id), icon=":material/stop_circle:",
                      on_click=_cancel, args=(job.id,), disabled=job.status is JobStatus.CANCELLING)
    progress = job.progress()
    st.progress(progress.fraction, text=describe_progress(job))
    if job.error:
        st.error(literal(job.error), icon=":material/error:")
    if job.kind is JobKind.EVALUATE and job.status is JobStatus.FINISHED:
        st.page_link("pages/evaluate.py", label="Open the evaluation", icon=":material/query_stats:")
    _render_problems(job, ctx)


def describe_progress(job: Job) -> str:
    """``8 of 12 recordings · 1 failed · 3.1 per minute · about 1 min left``."""
    progress = job.progress()
    parts = [f"{progress.finished} of {progress.total} recordings"]
    if progress.failed:
        parts.append(f"{progress.failed} failed")
    skipped = job.count(ItemStatus.SKIPPED)
    if skipped:
        parts.append(f"{skipped} already current or without ground truth")
    if progress.rate_per_min:
        parts.append(f"{progress.rate_per_min:.1f} per minute")
    if progress.seconds_left is not None:
        parts.append(f"about {human_duration(progress.seconds_left)} left")
    return " · ".join(parts)


def _render_problems(job: Job, ctx: UserContext) -> None:
    problems = {rid: r for rid, r in job.results.items() if r.status in PROBLEMS}
    if not problems:
        return
    names = {r.id: r.original_name for r in ctx.repo.get_many(list(problems))}
    with st.expander(f"{counted(len(problems), 'recording')} with errors"):
        st.dataframe(pd.DataFrame([{"Recording": names.get(rid, "(deleted)"), "Status": str(r.status),
                                    "Attempts": r.attempts, "Reason": r.message} for rid, r in problems.items()]),
                     hide_index=True, width="stretch")


def _cancel(job_id: str) -> None:
    with user_errors("Cancelling the job"):
        cancel_job(user_context().jobs, job_id)
        notify("The job is stopping; recordings already finished keep their results.")


# --- starting a job from My files ----------------------------------------------------------------------------


def render_start(selected: Sequence[FileRecord], query: ListQuery, ctx: UserContext) -> None:
    """My files' *Batch job* form: what to run, with which method, over the selection or the filter. Jobs run
    over the user's own recordings: a study's space offers none (its recordings are re-analysed one at a time)."""
    if query.study_id is not None:
        st.popover("Batch job", icon=":material/work_history:", width="stretch", disabled=True,
                   help="Batch jobs run over your own recordings; jobs over a study's are not there yet.")
        return
    with st.popover("Batch job", icon=":material/work_history:", width="stretch"):
        kind = st.radio("Job", list(JobKind), format_func=KIND_LABELS.__getitem__, key=state_keys.JOB_KIND)
        method = st.selectbox("Method", METHODS, key=state_keys.JOB_METHOD)
        scopes = [SCOPE_SELECTED, SCOPE_FILTER] if selected else [SCOPE_FILTER]
        scope = st.radio("Recordings", scopes, key=state_keys.JOB_SCOPE)
        st.caption("The job runs in the background (on Ray); follow it on the Jobs page. Recordings whose saved "
                   "analysis is already current for these settings are skipped.")
        if st.button("Start", key=state_keys.JOB_START, type="primary", icon=":material/play_arrow:"):
            _start(JobKind(kind), str(method), [r.id for r in selected] if scope == SCOPE_SELECTED else None,
                   query, ctx)


def _start(kind: JobKind, method: str, ids: list[str] | None, query: ListQuery, ctx: UserContext) -> None:
    with user_errors("Starting the job"):
        record_ids = ids if ids is not None else matching_ids(ctx.repo, query)
        parameters = JobParameters(method=method, band=ctx.services.settings.hr_band_hz)
        job = start_job(ctx.jobs, ctx.repo, kind, parameters, record_ids, ctx.services.start_job_driver)
        notify(f"Started: {KIND_LABELS[kind].lower()} of {counted(len(job.record_ids), 'recording')}. "
               "Follow it on the Jobs page.")
        st.switch_page("pages/jobs.py")
