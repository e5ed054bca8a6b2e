"""One file on the Upload page: checks, preview, properties, quick-look pulse,
research fields, and its upload with progress.

The card reads its widgets, calls one pipeline function (``prepare`` the
first time a file is seen, ``upload`` when asked) and renders the result.
Browser uploads (the Large files tab) get the same card: their original is
already in the bucket, so the card fetches it before the checks
(:func:`lib.direct_upload.prepare_in_bucket`), stores it without sending it
again (``original_in_bucket``) as soon as it is checked, and Discard or Skip
also removes it from the bucket.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pandas as pd
import streamlit as st

from components import upload_state
from components.context import UserContext
from components.quicklook import render_quick_look, render_saved_analysis
from components.upload_state import UploadItem
from lib import direct_upload, pipeline
from lib.errors import DuplicateRecording, PulseVaultError, ValidationError
from lib.keys import new_record_id
from lib.pipeline import PreparedRecording, Progress, Step
from lib.records import ResearchFields
from lib.settings import Settings
from lib.units import human_bytes, human_duration

log = logging.getLogger("pulsevault")

INLINE_VIDEO_MAX_BYTES = 512 * 1024 * 1024
"""Larger files are not previewed inline: Streamlit serves media from memory."""
UNEXPECTED = "The upload failed unexpectedly; the server log has the details. Nothing was kept half-stored."


def field_key(field: str, file_id: str) -> str:
    return f"pv_user_upload_{field}_{file_id}"


def consent_ok(item: UploadItem, settings: Settings) -> bool:
    return not settings.require_consent or bool(st.session_state.get(field_key("consent", item.file_id)))


def render_card(item: UploadItem, ctx: UserContext) -> UploadItem:
    """Draw one file's card; run its checks or its upload when due. Returns the item as it now is."""
    with st.container(border=True, key=f"pv_user_upload_card_{item.file_id}"):
        header = st.container()  # filled last, so its status badge reflects this run's work
        item = _body(item, ctx)
        with header:
            _header(item)
    return item


def _body(item: UploadItem, ctx: UserContext) -> UploadItem:
    if item.record is not None:
        _stored(item)
        return item
    if item.error is None and item.prepared is None:
        item = upload_state.put(_prepare(item, ctx))
        if item.direct is not None and item.uploadable and consent_ok(item, ctx.services.settings):
            upload_state.queue([item.file_id])  # its bytes are in already: store it once checked
    if item.error is not None:
        _refused(item, ctx)
        return item
    assert item.prepared is not None
    _media(item.prepared)
    with st.expander("Quick-look pulse", expanded=True, icon=":material/monitor_heart:"):
        render_quick_look(item.prepared.analysis, error=item.prepared.analysis_error)
    research = _research_fields(item, ctx.services.settings)
    if upload_state.take_queued(item.file_id) and item.uploadable:
        item = upload_state.put(_upload(item, research, ctx))
    _actions(item, ctx)
    return item


# --- sections ----------------------------------------------------------------------------------------


def _header(item: UploadItem) -> None:
    name, status = st.columns([4, 1])
    name.markdown(f"**{item.display_name}** · {human_bytes(item.size_bytes)}")
    colour = {"Ready": "green", "Upload failed": "red", "Not accepted": "red", "Check failed": "red",
              "Already stored": "orange"}.get(item.status, "gray")
    with status:
        st.badge(item.status, color=colour)
    if item.prepared is not None and item.prepared.name_changed:
        st.caption(f"Stored as “{item.prepared.original_name}”: the file name had characters that are "
                   "not allowed in stored names.")


def _prepare(item: UploadItem, ctx: UserContext) -> UploadItem:
    """Check the file and make its thumbnail, preview and quick-look; nothing is stored."""
    assert item.local_path is not None or item.direct is not None
    with st.status(f"Checking {item.given_name}…", expanded=True) as status:
        check_bar = st.progress(0.0, text="Checking the file")
        pulse_bar = st.progress(0.0, text="Quick-look pulse: waiting")

        def on_progress(p: Progress) -> None:
            if p.step is Step.ANALYSE:
                pulse_bar.progress(p.fraction, text=f"Quick-look pulse: {p.fraction:.0%}")
            else:
                check_bar.progress(p.fraction, text=p.describe())

        try:
            prepared, in_bucket = _run_prepare(item, ctx, on_progress)
        except PulseVaultError as exc:
            status.update(label=f"{item.given_name} cannot be accepted", state="error", expanded=False)
            retryable = not isinstance(exc, ValidationError)
            if not retryable:
                upload_state.release_files(item)
            return replace(item, error=str(exc), error_retryable=retryable,
                           local_path=item.local_path if retryable else None)
        status.update(label=f"{prepared.original_name} checked", state="complete", expanded=False)
    note = None
    if prepared.duplicate_of is not None:
        existing = prepared.duplicate_of
        note = (f"The same recording is already stored as {existing.original_name} "
                f"(uploaded {existing.created_at:%Y-%m-%d %H:%M} UTC).")
    return replace(item, prepared=prepared, duplicate_note=note, in_bucket=in_bucket, local_path=prepared.path)


def _run_prepare(item: UploadItem, ctx: UserContext, on_progress: pipeline.ProgressCallback
                 ) -> tuple[PreparedRecording, pipeline.OriginalInBucket | None]:
    services = ctx.services
    if item.direct is not None:
        return direct_upload.prepare_in_bucket(
            item.direct, settings=services.settings, store=services.store, repo=ctx.repo,
            workdir=upload_state.workspace().slot(item.file_id), progress=on_progress,
        )
    assert item.local_path is not None
    prepared = pipeline.prepare(item.local_path, item.given_name, settings=services.settings, repo=ctx.repo,
                                workdir=item.local_path.parent, progress=on_progress)
    return prepared, None


def _refused(item: UploadItem, ctx: UserContext) -> None:
    st.error(item.error, icon=":material/block:")
    left, right, _ = st.columns([1, 1, 4])
    if item.error_retryable:
        left.button("Check again", key=f"pv_user_upload_recheck_{item.file_id}", icon=":material/refresh:",
                    on_click=upload_state.recheck, args=(item.file_id,))
    right.button("Discard", key=f"pv_user_upload_discard_{item.file_id}", icon=":material/delete:",
                 on_click=_dismiss, args=(item.file_id, "Discarded", ctx))


def _dismiss(file_id: str, word: str, ctx: UserContext) -> None:
    """Discard or skip a file; a browser upload's original and pending row leave the bucket too."""
    item = upload_state.items().get(file_id)
    if item is not None and item.direct is not None:
        try:
            direct_upload.discard_upload(item.direct, store=ctx.services.store, repo=ctx.repo)
        except PulseVaultError as exc:
            upload_state.put(replace(item, failure=f"It could not be removed from the bucket: {exc}"))
            return
    upload_state.dismiss(file_id, word)


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
        st.dataframe(_properties(prepared), hide_index=True, width="stretch")


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
        st.warning(f"Lossy compression ({video.codec}) weakens the faint colour changes the pulse is read "
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
        ("Bit rate", "—" if not v.bit_rate else f"{v.bit_rate / 1e6:.2f} Mbit/s"),
        ("Size", human_bytes(prepared.size_bytes)),
        ("Compression", "lossless" if v.lossless else "lossy"),
        ("SHA-256", prepared.sha256[:16] + "…"),
    ]
    return pd.DataFrame(rows, columns=["Property", "Value"])


def _research_fields(item: UploadItem, settings: Settings) -> ResearchFields:
    """Per-file research fields. Plain widgets, not a form: "Upload all" must see what was typed."""
    fid = item.file_id
    stored = item.record is not None
    subject, session, tags = st.columns(3)
    subject_id = subject.text_input("Subject id", key=field_key("subject", fid), disabled=stored,
                                    placeholder="e.g. S07")
    session_label = session.text_input("Session label", key=field_key("session", fid), disabled=stored,
                                       placeholder="e.g. baseline, exercise")
    tag_text = tags.text_input("Tags", key=field_key("tags", fid), disabled=stored,
                               placeholder="comma-separated, e.g. daylight, glasses")
    notes = st.text_area("Notes", key=field_key("notes", fid), disabled=stored, height=68)
    if settings.require_consent:
        st.checkbox("The participant's consent to store this recording is on file",
                    key=field_key("consent", fid), disabled=stored)
    return ResearchFields(subject_id=subject_id.strip(), session_label=session_label.strip(),
                          notes=notes.strip(), tags=parse_tags(tag_text))


def parse_tags(text: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for tag in text.split(","):
        if tag.strip():
            seen.setdefault(tag.strip(), None)
    return tuple(seen)


def _upload(item: UploadItem, research: ResearchFields, ctx: UserContext) -> UploadItem:
    assert item.prepared is not None
    name = item.prepared.original_name
    record_id = new_record_id()
    # A browser upload's row stays pending with its original (lib.direct_upload's policy): Retry finishes
    # it from here; it is not a failed attempt for the pipeline (or My files) to replace.
    failed_id = None if item.in_bucket is not None else record_id
    bar = st.progress(0.0, text="Starting the upload…")
    with st.status(f"Uploading {name}", expanded=True) as status:
        last: list[Step] = []

        def on_progress(p: Progress) -> None:
            if not last or last[-1] is not p.step:
                last.append(p.step)
                status.write(p.label)
            bar.progress(p.fraction, text=p.describe())

        try:
            record = pipeline.upload(
                item.prepared, research, settings=ctx.services.settings, store=ctx.services.store,
                repo=ctx.repo, progress=on_progress, allow_duplicate=item.allow_duplicate,
                replaces=item.failed_record_id, record_id=record_id, original_in_bucket=item.in_bucket,
            )
        except DuplicateRecording as exc:
            status.update(label=f"{name} is already stored", state="error", expanded=False)
            return replace(item, duplicate_note=str(exc), allow_duplicate=False)
        except PulseVaultError as exc:
            status.update(label=f"Upload of {name} failed", state="error", expanded=False)
            return replace(item, failure=str(exc), failed_record_id=failed_id)
        except Exception:
            log.exception("upload of a recording failed unexpectedly")
            status.update(label=f"Upload of {name} failed", state="error", expanded=False)
            return replace(item, failure=UNEXPECTED, failed_record_id=failed_id)
        status.update(label=f"{name} is stored and ready", state="complete", expanded=False)
    st.toast(f"{name} is stored and ready.", icon=":material/cloud_done:")
    upload_state.release_files(item)  # the local copy is no longer needed
    return replace(item, record=record, prepared=None, failure=None, failed_record_id=None, local_path=None)


def _actions(item: UploadItem, ctx: UserContext) -> None:
    settings = ctx.services.settings
    fid = item.file_id
    if item.record is not None:
        _stored(item, with_analysis=False)  # just uploaded: the quick look is shown above
        return
    if item.failure:
        st.error(item.failure, icon=":material/error:")
        if item.in_bucket is not None:
            st.info("The recording itself is safe in the bucket (waiting, not listed as ready yet). Retry "
                    "finishes storing it without sending it again; Discard removes it from the bucket.",
                    icon=":material/cloud_done:")
    if item.duplicate_note and not item.allow_duplicate:
        st.warning(f"{item.duplicate_note} Skip this file, or upload it anyway?",
                   icon=":material/content_copy:")
        skip, anyway, _ = st.columns([1, 1, 3])
        skip.button("Skip", key=f"pv_user_upload_skip_{fid}", icon=":material/skip_next:",
                    on_click=_dismiss, args=(fid, "Skipped (already stored)", ctx))
        anyway.button("Upload anyway", key=f"pv_user_upload_anyway_{fid}", icon=":material/upload:",
                      on_click=upload_state.allow_duplicate, args=(fid,),
                      disabled=not consent_ok(item, settings))
        return
    upload, discard, hint = st.columns([1, 1, 3])
    label, icon = ("Retry", ":material/refresh:") if item.failure else ("Upload", ":material/upload:")
    upload.button(label, key=f"pv_user_upload_go_{fid}", icon=icon, type="primary",
                  on_click=upload_state.queue, args=([fid],), disabled=not consent_ok(item, settings))
    discard.button("Discard", key=f"pv_user_upload_discard_{fid}", icon=":material/delete:",
                   on_click=_dismiss, args=(fid, "Discarded", ctx))
    if not consent_ok(item, settings):
        hint.caption("Confirm the participant's consent to upload.")


def _stored(item: UploadItem, *, with_analysis: bool = True) -> None:
    assert item.record is not None
    record = item.record
    research = record.research
    labelled = (("subject", research.subject_id), ("session", research.session_label))
    details = ", ".join(f"{label} {value}" for label, value in labelled if value)
    st.success(f"Stored and ready{f' ({details})' if details else ''}. Find it under My files.",
               icon=":material/cloud_done:")
    st.caption(f"Record {record.id}")
    if with_analysis:
        with st.expander("Quick-look pulse (saved with the record)", icon=":material/monitor_heart:"):
            render_saved_analysis(record.analysis)
