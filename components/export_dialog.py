"""Export dataset, from My files and from a study on the Studies page: choose what (the selected recordings or
the current filter) and the layout, prepare it (every refusal, and every recording left out and why, shown
before anything is sent), then download the streamed zip through the app's one-time link, or the manifest with
its fetch script for a set too big for a browser."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from components import state_keys
from components.context import UserContext, user_context
from components.feedback import user_errors
from components.text import literal
from lib.export import (
    LAYOUT_LABELS,
    Delivery,
    ExportRequest,
    Layout,
    PreparedExport,
    Selection,
    prepare_export,
)
from lib.records import FileRecord, ListQuery
from lib.studies import Action, Study, allows
from lib.units import counted

SELECTED = "selected"
FILTERED = "filtered"


def ask_export(selected: Sequence[FileRecord], query: ListQuery) -> None:
    """Button callback: open the dialog for these rows and this filter (as they were when clicked)."""
    st.session_state[state_keys.FILES_DATASET_SCOPE] = (tuple(r.id for r in selected), query)
    st.session_state.pop(state_keys.FILES_DATASET_READY, None)


def render_study_export(study: Study) -> None:
    """The Studies page's Export: every recording of ``study``, or those matching a search, through the same
    dialog as My files; for anyone who may download the study's recordings."""
    if not allows(study.role, Action.VIEW):
        return
    st.subheader("Export")
    search, button = st.columns([4, 2], vertical_alignment="bottom")
    text = search.text_input("Only recordings matching (name, subject, session, notes or tag; empty: all)",
                             key=state_keys.STUDIES_EXPORT_FILTER)
    button.button("Export dataset", key=state_keys.STUDIES_EXPORT, icon=":material/dataset:", width="stretch",
                  on_click=ask_export, args=((), ListQuery(study_id=study.id, text=text.strip())),
                  help="This study's recordings as a dataset: UBFC-rPPG, BIDS-style or plain, with ground truth "
                       "and checksums.")


def _forget() -> None:
    for key in (state_keys.FILES_DATASET_SCOPE, state_keys.FILES_DATASET_READY):
        st.session_state.pop(key, None)


def render_export_dialog() -> None:
    """Keep the dialog open while an export is being chosen or downloaded."""
    scope = st.session_state.get(state_keys.FILES_DATASET_SCOPE)
    if scope:
        _export_dialog(*scope)


@st.dialog("Export dataset", icon=":material/dataset:", width="large", on_dismiss=_forget)
def _export_dialog(selected_ids: tuple[str, ...], query: ListQuery) -> None:
    choices = {FILTERED: "Every recording matching the current filter"}
    if selected_ids:
        choices = {SELECTED: f"The {counted(len(selected_ids), 'selected recording')}",
                   **choices}
    choice = st.radio("Export", list(choices), format_func=choices.__getitem__, key=state_keys.FILES_DATASET_CHOICE)
    layout = st.radio("Layout", list(Layout), format_func=LAYOUT_LABELS.__getitem__,
                      key=state_keys.FILES_DATASET_LAYOUT)
    wanted = (choice, layout)
    if st.button("Prepare export", key=state_keys.FILES_DATASET_PREPARE, type="primary", icon=":material/build:"):
        selection = Selection(record_ids=selected_ids) if choice == SELECTED else Selection(query=query)
        _prepare(user_context(), selection, Layout(layout), wanted)
    ready = st.session_state.get(state_keys.FILES_DATASET_READY)
    if ready is not None and ready[0] == wanted:
        _render_ready(ready[1])


def _prepare(ctx: UserContext, selection: Selection, layout: Layout, wanted: tuple[str, str]) -> None:
    st.session_state.pop(state_keys.FILES_DATASET_READY, None)
    bar = st.progress(0.0, text="Preparing the export…")
    with user_errors("Preparing the export"):
        prepared = prepare_export(ctx.services.store, ctx.repo, ctx.services.exports, ctx.services.settings,
                                  ExportRequest(selection, layout), trail=ctx.audit,
                                  progress=lambda done, total, what: bar.progress(done / max(total, 1), text=what))
        st.session_state[state_keys.FILES_DATASET_READY] = (wanted, prepared)
    bar.empty()


def _render_ready(prepared: PreparedExport) -> None:
    st.success(literal(prepared.describe()), icon=":material/check_circle:")
    if left_out := prepared.plan.left_out:
        st.warning(f"Left out of this export ({counted(len(left_out), 'recording')}):\n\n"
                   + "\n".join(f"- {literal(reason)}" for reason in left_out), icon=":material/block:")
    if prepared.delivery is Delivery.ZIP:
        st.link_button(f"Download {prepared.file_name}", prepared.download_url, type="primary",
                       icon=":material/download:", width="stretch")
        st.caption("The link works once, for a few minutes; prepare again for another download.")
    else:
        st.download_button(f"Download {prepared.file_name}", data=prepared.manifest, file_name=prepared.file_name,
                           mime="application/zip", key=state_keys.FILES_DATASET_DOWNLOAD, type="primary",
                           icon=":material/download:", on_click="ignore", width="stretch")
