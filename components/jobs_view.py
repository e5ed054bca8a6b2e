"""Batch jobs on screen: the Jobs page's list (the user's jobs and their studies' jobs, each labelled with its
study) with live progress, per-recording errors and cancel, and the *Batch job* form that starts one: in My
files over the selection or the filter (the personal space or the study chosen there), on the Studies page over
the study's recordings or those matching a search."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from components import state_keys
from components.context import UserContext, user_context
from components.feedback import notify, user_errors
from components.text import literal
from lib.jobs import (
    ItemStatus,
    Job,
    JobKind,
    JobParameters,
    JobRequest,
    JobStatus,
    cancel_job,
    list_jobs,
    matching_ids,
    start_job,
)
from lib.records import FileRecord, ListQuery
from lib.rppg import METHODS
from lib.studies import Action, Role, Study, allows, may_cancel_job
from lib.units import counted, human_duration

REFRESH_S = 2.0
"""How often the list redraws while a job runs."""
KIND_LABELS = {JobKind.REANALYSE: "Re-analyse", JobKind.EVALUATE: "Evaluate against ground truth",
               JobKind.REDERIVE: "Regenerate previews and thumbnails"}
STATUS_ICONS = {JobStatus.QUEUED: ":material/schedule:", JobStatus.RUNNING: ":material/sync:",
                JobStatus.CANCELLING: ":material/pending:", JobStatus.CANCELLED: ":material/block:",
                JobStatus.FINISHED: ":material/check_circle:", JobStatus.FAILED: ":material/error:"}
PROBLEMS = (ItemStatus.FAILED, ItemStatus.DELETED)
SCOPE_SELECTED = "Selected recordings"
SCOPE_FILTER = "Every stored recording matching the filters"
SCOPE_STUDY = "Every stored recording of the study"
SCOPE_SEARCH = "The study's stored recordings matching a search"
VIEWERS_CANNOT = ("Batch jobs write the recordings' analyses, so a study's viewers cannot start them; ask one of "
                  "its owners for the member role.")


# --- the Jobs page -------------------------------------------------------------------------------------------


def render_jobs() -> None:
    """The list; redrawn every :data:`REFRESH_S` while any job is unfinished."""
    ctx = user_context()
    jobs = None
    studies: dict[str, Study] = {}
    with user_errors("Loading your jobs"):
        jobs = list_jobs(ctx.jobs, ctx.services.start_job_driver)
        studies = {s.id: s for s in ctx.repo.studies()}
    if jobs is None:
        return
    if not jobs:
        st.info("No jobs yet. In My files, select recordings (or filter them), or on the Studies page choose a "
                "study, and start a batch job.", icon=":material/work_history:")
        return
    if any(not j.status.ended for j in jobs):
        _live(ctx, studies)
    else:
        _render_all(jobs, ctx, studies)


@st.fragment(run_every=REFRESH_S)
def _live(ctx: UserContext, studies: dict[str, Study]) -> None:
    with user_errors("Loading your jobs"):
        jobs = ctx.jobs.list()
        _render_all(jobs, ctx, studies)
        if all(j.status.ended for j in jobs):  # nothing left to follow: the page stops redrawing
            st.rerun()


def _render_all(jobs: Sequence[Job], ctx: UserContext, studies: dict[str, Study]) -> None:
    for job in jobs:
        with st.container(border=True):
            _render_job(job, ctx, studies)


def where_label(job: Job, studies: dict[str, Study], user_id: str) -> str:
    """``My files`` or ``Study Sleep 2024``, and who started it when it was someone else."""
    if job.study_id is None:
        return "My files"
    study = studies.get(job.study_id)
    label = f"Study {literal(study.name)}" if study else "A study you are no longer in"
    if job.user_id != user_id:
        label += f", started by {literal(job.owner_email) or 'another member'}"
    return label


def _render_job(job: Job, ctx: UserContext, studies: dict[str, Study]) -> None:
    title, action = st.columns([5, 1], vertical_alignment="center")
    params = job.parameters
    band = f", {params.band[0]:g}–{params.band[1]:g} Hz" if params.band else ""
    method = "" if job.kind is JobKind.REDERIVE else f"{params.method}{band} · "
    title.markdown(f"{STATUS_ICONS[job.status]} **{KIND_LABELS[job.kind]}** · {method}"
                   f"{counted(len(job.record_ids), 'recording')} · {where_label(job, studies, ctx.user_id)} · "
                   f"*{job.status}* · started {job.created_at:%Y-%m-%d %H:%M} UTC")
    study = studies.get(job.study_id) if job.study_id else None
    if not job.status.ended and may_cancel_job(job.study_id, study.role if study else None,
                                               creator_id=job.user_id, caller_id=ctx.user_id):
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
    """My files' *Batch job* form: what to run, with which method, over the selection or the filter, in the space
    chosen there (personal, or a study where the user is a member or owner)."""
    role: Role | None = None
    if query.study_id is not None:
        with user_errors("Loading the study"):
            role = ctx.repo.study(query.study_id).role
        if not allows(role, Action.RUN_JOBS):
            st.popover("Batch job", icon=":material/work_history:", width="stretch", disabled=True,
                       help=VIEWERS_CANNOT)
            return
    with st.popover("Batch job", icon=":material/work_history:", width="stretch"):
        kind, method = _job_widgets()
        scopes = [SCOPE_SELECTED, SCOPE_FILTER] if selected else [SCOPE_FILTER]
        scope = st.radio("Recordings", scopes, key=state_keys.JOB_SCOPE)
        if st.button("Start", key=state_keys.JOB_START, type="primary", icon=":material/play_arrow:"):
            _start(kind, method, [r.id for r in selected] if scope == SCOPE_SELECTED else None, query, ctx)


def render_study_start(study: Study, ctx: UserContext) -> None:
    """The Studies page's *Batch job* form: over every stored recording of the chosen study, or those matching a
    search (name, subject, session, notes); members and owners only."""
    st.subheader("Batch job")
    if not allows(study.role, Action.RUN_JOBS):
        st.caption(VIEWERS_CANNOT)
        return
    with st.form(state_keys.JOB_STUDY_FORM):
        kind, method = _job_widgets()
        scope = st.radio("Recordings", [SCOPE_STUDY, SCOPE_SEARCH], key=state_keys.JOB_SCOPE, horizontal=True)
        text = st.text_input("Search", key=state_keys.JOB_STUDY_SEARCH,
                             help="Used with the second choice: recordings whose name, subject, session or notes "
                                  "contain it.")
        if st.form_submit_button("Start", type="primary", icon=":material/play_arrow:"):
            query = ListQuery(study_id=study.id, text=text if scope == SCOPE_SEARCH else "")
            _start(kind, method, None, query, ctx)


def _job_widgets() -> tuple[JobKind, str]:
    kind = st.radio("Job", list(JobKind), format_func=KIND_LABELS.__getitem__, key=state_keys.JOB_KIND)
    method = st.selectbox("Method", METHODS, key=state_keys.JOB_METHOD,
                          help="For re-analysis and evaluation; regenerating previews uses none.")
    st.caption("The job runs in the background (on Ray); follow it on the Jobs page. Recordings whose saved "
               "analysis (or preview and thumbnail) is already current for these settings are skipped.")
    return JobKind(kind), str(method)


def _start(kind: JobKind, method: str, ids: list[str] | None, query: ListQuery, ctx: UserContext) -> None:
    with user_errors("Starting the job"):
        record_ids = ids if ids is not None else matching_ids(ctx.repo, query)
        parameters = JobParameters(method=method, band=ctx.services.settings.hr_band_hz)
        request = JobRequest(kind, parameters, record_ids, study_id=query.study_id, owner_email=ctx.session.email)
        job = start_job(ctx.jobs, ctx.repo, request, ctx.services.start_job_driver)
        notify(f"Started: {KIND_LABELS[kind].lower()} of {counted(len(job.record_ids), 'recording')}. "
               "Follow it on the Jobs page.")
        st.switch_page("pages/jobs.py")
