"""My files: the detail panel of one selected recording — player, properties,
download, share link, research fields, quick-look pulse and Re-analyse.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from components import consent_view, files_actions, move_view, state_keys
from components.context import UserContext
from components.feedback import notify, user_errors
from components.files_table import STATUS_LABELS, link_cache
from components.ground_truth import render_ground_truth
from components.quicklook import render_saved_analysis
from components.research_form import render_research_fields
from components.tables import show_table
from components.text import literal
from lib.library import (
    can_discard,
    describe_expiry,
    download_url,
    edit_research,
    playback_url,
    share_expiry_options,
    share_link,
)
from lib.records import Consent, FileRecord, Status
from lib.rppg import METHODS
from lib.studies import RecordRights
from lib.units import human_bytes, human_duration

STATUS_COLOURS = {Status.READY: "green", Status.PENDING: "gray", Status.FAILED: "red"}


def share_key(record_id: str) -> str:
    return state_keys.files_record("share", record_id)


FULL_RIGHTS = RecordRights(edit_research=True, share=True, delete=True, manage_files=True)
"""A recording in the caller's personal space."""


def render_detail(record: FileRecord, ctx: UserContext, rights: RecordRights = FULL_RIGHTS) -> None:
    """The selected recording, with the actions ``rights`` allow (lib.studies.record_rights)."""
    with st.container(border=True, key=state_keys.FILES_DETAIL):
        title, badge = st.columns([5, 1])
        title.subheader(literal(record.original_name), anchor=False)
        with badge:
            st.badge(STATUS_LABELS[record.status], color=STATUS_COLOURS[record.status])
        if record.status is not Status.READY:  # a withdrawn row is failed until its erasure finishes
            if record.consent is Consent.WITHDRAWN:
                consent_view.render_withdrawn(record, rights.delete)
            elif rights.manage_files:
                files_actions.render_unfinished(record, ctx, can_discard=can_discard(record, ctx.services.settings))
            show_table(properties(record))
            return
        player, props = st.columns([3, 2])
        with player:
            _player(record, ctx)
        with props:
            show_table(properties(record), height=460)
        _actions(record, ctx, rights.delete)
        consent_view.render_consent(record, ctx, editable=rights.delete)  # lib.consent: the delete rule
        if rights.share:
            _share(record, ctx)
        if rights.edit_research:
            _research(record, ctx)
        if rights.manage_files:
            render_ground_truth(record, ctx)
        move_view.render_move(record, ctx)
        _analysis(record, ctx, rights.manage_files)


def _player(record: FileRecord, ctx: UserContext) -> None:
    owner = ctx.user_id
    if record.video is not None and not record.video.browser_playable and not record.preview_key:
        st.info("Browsers cannot play this recording's codec and it has no preview; download it to watch it.",
                icon=":material/videocam_off:")
        return
    with user_errors("Preparing the player"):
        # Cached: a fresh signature each rerun would make the browser reload (and restart) the video.
        link = link_cache().get(("play", owner, record.id, record.playback_key),
                                lambda: playback_url(ctx.services.store, ctx.repo, record.id, trail=ctx.audit))
        assert link is not None
        st.video(link.url, format=link.content_type)
        if record.preview_key:
            st.caption("Playing the H.264 preview; the original is stored unchanged.")


def properties(record: FileRecord) -> pd.DataFrame:
    v = record.video
    r = record.research
    rows: list[tuple[str, str]] = [("Status", STATUS_LABELS[record.status])]
    if record.error:
        rows.append(("Reason", record.error))
    if v is not None:
        rows += [
            ("Codec", v.codec), ("Resolution", f"{v.width} × {v.height}"), ("Frame rate", f"{v.fps:g} fps"),
            ("Frames", f"{v.frame_count:,}"), ("Duration", human_duration(v.duration_s)),
            ("Bit rate", "—" if not v.bit_rate else f"{v.bit_rate / 1e6:.2f} Mbit/s"),
            ("Compression", "lossless" if v.lossless else "lossy"),
            ("Browser-playable", "yes" if v.browser_playable else "no (H.264 preview stored)" if record.preview_key
             else "no"),
        ]
    rows += [
        ("Size", human_bytes(record.size_bytes)), ("Content type", record.content_type),
        ("Subject", r.subject_id or "—"), ("Session", r.session_label or "—"), ("Tags", ", ".join(r.tags) or "—"),
        ("Consent", consent_view.consent_label(record)),
        ("Ground truth", record.ground_truth_name or "attached" if record.ground_truth_key else "none"),
        ("Uploaded", f"{record.created_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("Updated", f"{record.updated_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("SHA-256", record.sha256 or "—"), ("Record id", record.id),
    ]
    return pd.DataFrame(rows, columns=["Property", "Value"])


def _actions(record: FileRecord, ctx: UserContext, deletable: bool) -> None:
    download, delete, _ = st.columns([2, 1, 3])
    with download, user_errors("Preparing the download"):
        # Cached like the player's: each link issued is an audit entry, not each rerun of the page.
        link = link_cache().get(("download", ctx.user_id, record.id, record.s3_key),
                                lambda: download_url(ctx.services.store, ctx.repo, record.id, trail=ctx.audit))
        assert link is not None
        st.link_button("Download original", link.url, icon=":material/download:", type="primary",
                       help=f"Saves as {literal(record.original_name)}; the link works for "
                            f"{describe_expiry(link.expires_s)}.")
    if deletable:
        delete.button("Delete", key=state_keys.files_record("delete", record.id), icon=":material/delete:",
                      on_click=files_actions.ask_delete, args=((record,),))


def _share(record: FileRecord, ctx: UserContext) -> None:
    settings = ctx.services.settings
    with st.expander("Share link", icon=":material/share:"):
        options = share_expiry_options(settings)
        expires = st.select_slider("Link works for", options=options, value=settings.clamp_expiry(None),
                                   format_func=describe_expiry, key=state_keys.files_record("share_expiry", record.id))
        if record.consent is not Consent.SHAREABLE:
            st.caption("Its consent is for internal use only, so PulseVault refuses share links; change the consent "
                       "above if the participants agreed to sharing.")
        if st.button("Create link", key=state_keys.files_record("share_make", record.id), icon=":material/link:"):
            with user_errors("Creating the share link"):
                st.session_state[share_key(record.id)] = share_link(ctx.services.store, ctx.repo, record.id,
                                                                    expires, settings, trail=ctx.audit)
        link = st.session_state.get(share_key(record.id))
        if link is not None:
            st.code(link.url, language=None, wrap_lines=True)
            left = link.expires_at - datetime.now(UTC)
            state = "expired" if left.total_seconds() <= 0 else f"in {describe_expiry(int(left.total_seconds()))}"
            st.caption(f"Anyone with this link can download the original until "
                       f"{link.expires_at:%Y-%m-%d %H:%M:%S} UTC ({state}).")


def _research(record: FileRecord, ctx: UserContext) -> None:
    with st.form(state_keys.files_record("research", record.id), border=True):
        st.markdown("**Research fields**")
        research = render_research_fields(lambda field: state_keys.files_record(field, record.id), record.research)
        if st.form_submit_button("Save", icon=":material/save:"):
            with user_errors("Saving the research fields"):
                edit_research(ctx.repo, record.id, research, trail=ctx.audit)
                notify(f"Research fields of {literal(record.original_name)} saved.")
                st.rerun()


def _analysis(record: FileRecord, ctx: UserContext, reanalysable: bool) -> None:
    with st.expander("Quick-look pulse", expanded=True, icon=":material/monitor_heart:"):
        render_saved_analysis(record.analysis)
        if not reanalysable:
            return
        method_col, button_col, _ = st.columns([1, 1, 3], vertical_alignment="bottom")
        method = method_col.selectbox("Method", METHODS, key=state_keys.files_record("method", record.id))
        if button_col.button("Re-analyse", key=state_keys.files_record("reanalyse", record.id),
                             icon=":material/refresh:"):
            files_actions.run_reanalysis(record, method, ctx)
