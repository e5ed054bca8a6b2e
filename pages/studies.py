"""Studies: create one, see its members and recordings and export them as a dataset; owners add members by
e-mail, manage roles and delete an empty study."""

from __future__ import annotations

import streamlit as st

from components.audit_view import render_audit
from components.context import user_context
from components.export_dialog import render_export_dialog, render_study_export
from components.feedback import show_notice, user_errors
from components.jobs_view import render_study_start
from components.retention_view import render_retention
from components.studies_view import (
    ROLE_HELP,
    pick_study,
    render_delete_study,
    render_members,
    render_new_study,
    render_recordings,
)
from lib.studies import Study


def render() -> None:
    ctx = user_context()
    st.title("Studies")
    show_notice()
    st.caption(f"A study shares its recordings with its members by role. {ROLE_HELP} Your personal space "
               "(My files) stays yours alone.")
    render_new_study(ctx.repo)
    studies: list[Study] | None = None
    with user_errors("Loading your studies"):
        studies = ctx.repo.studies()
    if studies is None:
        return
    if not studies:
        st.info("You are not in any study yet. Create one above, or ask a study's owner to add you with the "
                "e-mail address you sign in with.", icon=":material/groups:")
        return
    study = pick_study(studies)
    render_members(ctx.repo, study, ctx.user_id, ctx.audit)
    render_recordings(ctx, study)
    render_study_export(study)
    render_export_dialog()
    render_study_start(study, ctx)
    render_retention(ctx, study)
    render_audit(ctx.audit.log, ctx.repo, study)
    render_delete_study(ctx.repo, study, ctx.audit)


if __name__ == "__main__":  # run by st.navigation
    render()
