"""My files' space picker: the personal space, or one of the studies the user is a member of."""

from __future__ import annotations

import streamlit as st

from components import state_keys
from components.feedback import user_errors
from lib.repository import Repository
from lib.studies import Action, Study, allows

PERSONAL = ""
"""The picker's value for the personal space."""
ROLE_CAN = {
    "viewer": "you can play and download its recordings",
    "member": "you can also edit research fields, share, and delete what you uploaded",
    "owner": "you can also delete any of its recordings, and manage its members on the Studies page",
}
"""What each role may do here, said under the picker."""


def render_space_picker(repo: Repository) -> Study | None:
    """The study to show (None: the personal space). Shown only to members of a study."""
    studies: list[Study] = []
    with user_errors("Loading your studies"):
        studies = repo.studies()
    if not studies:
        return None
    by_id = {s.id: s for s in studies}
    if st.session_state.get(state_keys.FILES_SPACE) not in {PERSONAL, *by_id}:
        st.session_state[state_keys.FILES_SPACE] = PERSONAL  # the study was left, or the member removed
    chosen = st.selectbox("Show", [PERSONAL, *by_id], key=state_keys.FILES_SPACE,
                          format_func=lambda i: f"Study: {by_id[i].name}" if i else "My files (personal space)")
    if not chosen:
        return None
    study = by_id[chosen]
    uploads = " Upload into it from the Upload page." if allows(study.role, Action.UPLOAD) else ""
    st.caption(f"You are a {study.role.value} of this study: {ROLE_CAN[study.role.value]}.{uploads}")
    return study
