"""One upload job on the Upload page: checks, preview, properties, quick-look pulse, research fields,
and its upload with progress.

The card renders the job (:class:`lib.uploads.UploadJob`) and collects input;
the job decides what comes next and :mod:`lib.uploads` runs each step (its check
goes to the check workers the first time a file is seen, and the page follows
every running check's bars at the end; store when asked). Browser uploads (the Large
files tab) get the same card: their check fetches the original from the
bucket, they are stored as soon as they are checked, and Discard or Skip also
removes them from the bucket.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import state_keys, upload_jobs
from components.check_progress import CheckBars, render_bars
from components.context import UserContext
from components.ground_truth import render_card_ground_truth
from components.quicklook import render_quick_look, render_saved_analysis
from components.research_form import render_research_fields
from components.tables import show_table
from components.text import literal
from lib import uploads
from lib.pipeline import Backends, PreparedRecording, Progress, Step
from lib.units import MISSING, human_bytes, human_duration
from lib.uploads import JobStatus, UploadJob

INLINE_VIDEO_MAX_BYTES = 512 * 1024 * 1024
"""Larger files are not previewed inline: Streamlit serves media from memory."""
STATUS_COLOURS = {JobStatus.READY: "green", JobStatus.UPLOAD_FAILED: "red", JobStatus.NOT_ACCEPTED: "red",
                  JobStatus.CHECK_FAILED: "red", JobStatus.ALREADY_STORED: "orange", JobStatus.DELETED: "gray"}
"""Badge colour per job status (grey for the rest)."""


def card_key(part: str, job_id: str) -> str:
    """Widget key of one part of a job's card (its container, research fields, consent, buttons)."""
    return state_keys.upload_card(part, job_id)


def backends(ctx: UserContext, study_id: str | None = None) -> Backends:
    """What this user's uploads run against: settings, bucket, their rows both ways (one session), the study
    they go into (None: the personal space) and the session's audit trail."""
    return Backends(ctx.services.settings, ctx.services.store, ctx.repo, ctx.server, study_id, trail=ctx.audit)


def render_card(job: UploadJob, ctx: UserContext, checking: list[CheckBars]) -> UploadJob:
    """Draw one job's card; hand its check to the check workers, or run its store step, when due. Returns the
    job as it now is; a check still running adds its bars to ``checking`` (the page follows them)."""
    with st.container(border=True, key=card_key("card", job.id)):
        header = st.container()  # filled last, so its status badge reflects this run's work
        job = _body(job, ctx, checking)
        with header:
            _header(job)
    return job


def _body(job: UploadJob, ctx: UserContext, checking: list[CheckBars]) -> UploadJob:
    if job.status is JobStatus.READY:
        job = upload_jobs.put(uploads.confirm_stored(job, ctx.repo))
    if job.status in (JobStatus.READY, JobStatus.DELETED):
        _stored(job, ctx)
        return job
    if job.status is JobStatus.CHECKING:
        job = upload_jobs.put(uploads.check(job, backends(ctx, job.study_id), upload_jobs.workspace(),
                                            ctx.services.checks))
        if job.status is JobStatus.CHECKING:
            checking.append(_checking(job, ctx))
            return job
        if job.store_when_checked(ctx.services.settings.require_consent):
            upload_jobs.queue([job.id])  # its bytes are in already: store it once checked
    if job.status in (JobStatus.NOT_ACCEPTED, JobStatus.CHECK_FAILED):
        _refused(job, ctx)
        return job
    assert job.prepared is not None
    _media(job.prepared)
    with st.expander("Quick-look pulse", expanded=True, icon=":material/monitor_heart:"):
        render_quick_look(job.prepared.analysis, error=job.prepared.analysis_error)
    job = upload_jobs.put(_input(job, ctx))
    if upload_jobs.take_queued(job.id) and job.ready_to_store(ctx.services.settings.require_consent):
        job = upload_jobs.put(_store(job, ctx))
    _actions(job, ctx)
    return job


# --- sections ----------------------------------------------------------------------------------------


def _header(job: UploadJob) -> None:
    name, status = st.columns([4, 1])
    name.markdown(f"**{literal(job.display_name)}** · {human_bytes(job.size_bytes)}")
    with status:
        st.badge(job.status.value, color=STATUS_COLOURS.get(job.status, "gray"))
    if job.prepared is not None and job.prepared.name_changed:
        st.caption(f"Stored as “{literal(job.prepared.original_name)}”: the file name had characters that are "
                   "not allowed in stored names.")


def _checking(job: UploadJob, ctx: UserContext) -> CheckBars:
    """The check's bars while it waits or runs on the check workers, and a way to stop it."""
    with st.status(f"Checking {literal(job.given_name)}…", expanded=True):
        bars = render_bars(job.id, ctx.services.checks.state(job.id))
        st.button("Cancel check", key=card_key("cancel", job.id), icon=":material/cancel:",
                  on_click=ctx.services.checks.cancel, args=(job.id,))
    return bars


def _refused(job: UploadJob, ctx: UserContext) -> None:
    st.error(literal(job.message), icon=":material/block:")
    left, right, _ = st.columns([1, 1, 4])
    if job.status is JobStatus.CHECK_FAILED:
        left.button("Check again", key=card_key("recheck", job.id), icon=":material/refresh:",
                    on_click=_recheck, args=(job.id,))
    right.button("Discard", key=card_key("discard", job.id), icon=":material/delete:",
                 on_click=_dismiss, args=(job.id, ctx))


def _recheck(job_id: str) -> None:
    job = upload_jobs.get(job_id)
    if job is not None and job.status is JobStatus.CHECK_FAILED:
        upload_jobs.put(job.recheck())


def _dismiss(job_id: str, ctx: UserContext, skip: bool = False) -> None:
    """Discard or skip a file; a browser upload's original and pending row leave the bucket too."""
    job = upload_jobs.get(job_id)
    if job is not None and not job.dismissed:
        upload_jobs.put(uploads.dismiss(job, backends(ctx, job.study_id), upload_jobs.workspace(), skip=skip))
        upload_jobs.unqueue(job_id)


def _allow_duplicate(job_id: str) -> None:
    job = upload_jobs.get(job_id)
    if job is not None and job.status is JobStatus.ALREADY_STORED:
        upload_jobs.put(job.allow_duplicate())
        upload_jobs.queue([job_id])


def _media(prepared: PreparedRecording) -> None:
    thumb, video, props = st.columns([1, 2, 2])
    with thumb:
        st.image(str(prepared.thumbnail), caption="Thumbnail", width="stretch")
    with video:
        playback = prepared.playback_path
        if playback.stat().st_size <= INLINE_VIDEO_MAX_BYTES:
            fmt = "video/mp4" if prepared.preview else prepared.container.content_type
            st.video(str(playback), format=fmt)
        else:
            st.caption("Too large to preview here; the preview will play from My files once stored.")
        _badges(prepared)
    with props:
        show_table(_properties(prepared))


def _badges(prepared: PreparedRecording) -> None:
    video = prepared.video
    row = st.container(horizontal=True)
    with row:
        if video.lossless:
            st.badge("Lossless", icon=":material/verified:", color="green")
        else:
            st.badge("Lossy", icon=":material/warning:", color="orange")
        if prepared.preview is None:
            st.badge("Browser-playable", icon=":material/play_circle:", color="blue")
        else:
            st.badge("H.264 preview proxy", icon=":material/movie:", color="violet")
    if not video.lossless:
        st.warning(f"Lossy compression ({literal(video.codec)}) weakens the faint colour changes the pulse is read "
                   "from; record losslessly (e.g. FFV1) when you can.", icon=":material/warning:")
    if prepared.preview is not None:
        st.caption("Browsers cannot play the original, so a small H.264 copy is stored with it for previews.")


def _properties(prepared: PreparedRecording) -> pd.DataFrame:
    v = prepared.video
    rows = [
        ("Container", f"{prepared.container.extension.upper()} ({prepared.container.content_type})"),
        ("Codec", v.codec),
        ("Resolution", f"{v.width} × {v.height}"),
        ("Frame rate", f"{v.fps:g} fps"),
        ("Frames", f"{v.frame_count:,}"),
        ("Duration", human_duration(v.duration_s)),
        ("Bit rate", MISSING if not v.bit_rate else f"{v.bit_rate / 1e6:.2f} Mbit/s"),
        ("Size", human_bytes(prepared.size_bytes)),
        ("Compression", "lossless" if v.lossless else "lossy"),
        ("SHA-256", prepared.sha256[:16] + "…"),
    ]
    return pd.DataFrame(rows, columns=["Property", "Value"])


def _input(job: UploadJob, ctx: UserContext) -> UploadJob:
    """The card's research fields and consent, handed to the job. Plain widgets, not a form: "Upload all"
    must see what was typed."""
    research = render_research_fields(lambda field: card_key(field, job.id), job.research)
    consent = job.consent
    if ctx.services.settings.require_consent:
        consent = st.checkbox("The participant's consent to store this recording is on file", value=job.consent,
                              key=card_key("consent", job.id))
    keep_doubtful = False
    if job.doubts and job.storable:
        st.warning("The quick look cannot read a heart rate from this recording (see why above), so it is "
                   "stored only if you say so.", icon=":material/help:")
        keep_doubtful = st.checkbox("Store it anyway: I know no heart rate can be read from it",
                                    value=job.keep_doubtful, key=card_key("keep_doubtful", job.id))
    return job.with_input(research, consent, keep_doubtful)


def _store(job: UploadJob, ctx: UserContext) -> UploadJob:
    name = literal(job.display_name)  # Markdown in every label below
    bar = st.progress(0.0, text="Starting the upload…")
    with st.status(f"Uploading {name}", expanded=True) as status:
        last: list[Step] = []

        def on_progress(p: Progress) -> None:
            if not last or last[-1] is not p.step:
                last.append(p.step)
                status.write(p.label)
            bar.progress(p.fraction, text=p.describe())

        job = uploads.store(job, backends(ctx, job.study_id), upload_jobs.workspace(), on_progress)
        if job.status is JobStatus.READY:
            status.update(label=f"{name} is stored and ready", state="complete", expanded=False)
        elif job.status is JobStatus.ALREADY_STORED:
            status.update(label=f"{name} is already stored", state="error", expanded=False)
        else:
            status.update(label=f"Upload of {name} failed", state="error", expanded=False)
    if job.status is JobStatus.READY:
        st.toast(f"{name} is stored and ready.", icon=":material/cloud_done:")
    return job


def _actions(job: UploadJob, ctx: UserContext) -> None:
    if job.status is JobStatus.READY:
        _stored(job, ctx, with_analysis=False)  # just uploaded: the quick look is shown above
        return
    if job.status is JobStatus.UPLOAD_FAILED:
        st.error(literal(job.message), icon=":material/error:")
        if job.in_bucket is not None:
            st.info("The recording itself is safe in the bucket (waiting, not listed as ready yet). Retry "
                    "finishes storing it without sending it again; Discard removes it from the bucket.",
                    icon=":material/cloud_done:")
    if job.status is JobStatus.ALREADY_STORED:
        _duplicate_choice(job, ctx)
        return
    waiting_for = _waiting_for(job, ctx)
    upload, discard, hint = st.columns([1, 1, 3])
    label, icon = ("Retry", ":material/refresh:") if job.status is JobStatus.UPLOAD_FAILED else (
        "Upload", ":material/upload:")
    upload.button(label, key=card_key("go", job.id), icon=icon, type="primary",
                  on_click=upload_jobs.queue, args=([job.id],), disabled=bool(waiting_for))
    discard.button("Discard", key=card_key("discard", job.id), icon=":material/delete:",
                   on_click=_dismiss, args=(job.id, ctx))
    if waiting_for:
        hint.caption(waiting_for)


def _waiting_for(job: UploadJob, ctx: UserContext) -> str | None:
    """What the researcher must confirm before this file can be stored, or None."""
    if not job.consent_ok(ctx.services.settings.require_consent):
        return "Confirm the participant's consent to upload."
    if not job.doubts_settled:
        return "Tick “Store it anyway” to upload a recording the quick look cannot use."
    return None


def _duplicate_choice(job: UploadJob, ctx: UserContext) -> None:
    st.warning(f"{literal(job.duplicate_note)} Skip this file, or upload it anyway?", icon=":material/content_copy:")
    skip, anyway, _ = st.columns([1, 1, 3])
    skip.button("Skip", key=card_key("skip", job.id), icon=":material/skip_next:",
                on_click=_dismiss, args=(job.id, ctx, True))
    anyway.button("Upload anyway", key=card_key("anyway", job.id), icon=":material/upload:",
                  on_click=_allow_duplicate, args=(job.id,), disabled=bool(_waiting_for(job, ctx)))


def _stored(job: UploadJob, ctx: UserContext, *, with_analysis: bool = True) -> None:
    assert job.record is not None
    record = job.record
    if job.status is JobStatus.DELETED:
        st.info("This recording was stored, and has been deleted since; it is no longer in your storage. "
                "Upload the file again to store it anew.", icon=":material/delete:")
        return
    research = record.research
    labelled = (("subject", research.subject_id), ("session", research.session_label))
    details = ", ".join(f"{label} {literal(value)}" for label, value in labelled if value)
    st.success(f"Stored and ready{f' ({details})' if details else ''}. Find it under My files.",
               icon=":material/cloud_done:")
    st.caption(f"Record {record.id}")
    render_card_ground_truth(record, ctx, paired=upload_jobs.paired_truth(job.id))
    if with_analysis:
        with st.expander("Quick-look pulse (saved with the record)", icon=":material/monitor_heart:"):
            render_saved_analysis(record.analysis)
