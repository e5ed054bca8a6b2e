"""Where new uploads go: the personal space, or a study where the user may upload (member or owner)."""

from __future__ import annotations

import streamlit as st

from components import state_keys
from components.feedback import user_errors
from lib.repository import Repository
from lib.studies import Action, Study, studies_allowing

PERSONAL = ""
"""The selectbox's value for the personal space (a selectbox value cannot be None and keep its place)."""


def render_target(repo: Repository) -> str | None:
    """The study the files picked now go into (None: the personal space). Shown only to members of a study;
    a file keeps the target it was picked with."""
    studies: list[Study] = []
    with user_errors("Loading your studies"):
        studies = repo.studies()
    if not studies:
        return None
    allowed = {s.id: s for s in studies_allowing(studies, Action.UPLOAD)}
    if len(allowed) < len(studies):
        st.caption("Studies where you are a viewer are not offered: viewers see and play a study's recordings "
                   "but do not upload.")
    if not allowed:
        return None
    if st.session_state.get(state_keys.UPLOAD_TARGET) not in {PERSONAL, *allowed}:
        st.session_state[state_keys.UPLOAD_TARGET] = PERSONAL  # the study was left, or the role lowered
    chosen = st.selectbox("Store into", [PERSONAL, *allowed], key=state_keys.UPLOAD_TARGET,
                          format_func=lambda i: f"Study: {allowed[i].name}" if i else "My files (personal space)",
                          help="Files picked from now on go here, on every tab; those picked before keep theirs.")
    return chosen or None
