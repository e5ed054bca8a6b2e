"""The Usage page's studies: each of the caller's studies against the study quota (per person for its owners),
and for administrators every study. lib.usage decides who sees what; this only draws it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import state_keys
from components.context import UserContext
from components.feedback import user_errors
from components.tables import show_table
from components.text import literal
from lib.units import human_bytes
from lib.usage import StudyUsage, admin_study_overview, studies_usage


def render_studies_usage(ctx: UserContext) -> None:
    """Storage and recordings of every study the caller is a member of."""
    st.subheader("Studies")
    with user_errors("Loading your studies' usage"):
        usages = studies_usage(ctx.repo, ctx.services.settings)
        if not usages:
            st.caption("You are not in any study. A study's recordings count against the study's quota "
                       "and your own.")
            return
        st.caption("Ready recordings in each study you are in, against the study's quota (every member's uploads "
                   "count; yours count against your own quota too).")
        show_table(pd.DataFrame({
            "Study": [u.study.name for u in usages], "Your role": [u.study.role.value for u in usages],
            "Stored": [human_bytes(u.bytes) for u in usages], "Recordings": [u.recordings for u in usages],
            "Quota": [human_bytes(u.quota_bytes) for u in usages],
            "Used": [f"{u.used_fraction:.1%}" for u in usages]}))
        for usage in usages:
            _render_breakdown(usage)


def _render_breakdown(usage: StudyUsage) -> None:
    if usage.used_fraction >= 1:
        st.error(f"{literal(usage.study.name)} is full: uploads into it are refused until recordings are deleted "
                 "or an administrator raises the study quota.", icon=":material/block:")
    if not usage.by_uploader:
        return
    with st.expander(f"{literal(usage.study.name)}: per person"):
        show_table(pd.DataFrame({
            "Person": [u.email for u in usage.by_uploader], "Stored": [human_bytes(u.bytes) for u in usage.by_uploader],
            "Recordings": [u.recordings for u in usage.by_uploader]}))


def render_admin_studies(ctx: UserContext) -> None:
    """Every study with its owner, members, storage and recordings (administrators)."""
    st.subheader("Every study")
    if not st.toggle("Show every study", key=state_keys.USAGE_ADMIN_STUDIES):
        return
    with user_errors("Listing every study"):
        studies = admin_study_overview(ctx.repo, ctx.caller)
        if not studies:
            st.caption("Nobody has created a study yet.")
            return
        show_table(pd.DataFrame({
            "Study": [s.name for s in studies], "Owner": [s.owner_email or "(account deleted)" for s in studies],
            "Members": [s.members for s in studies], "Stored": [human_bytes(s.bytes) for s in studies],
            "Recordings": [s.recordings for s in studies], "Created": [s.created_at for s in studies]}),
            column_config={"Created": st.column_config.DatetimeColumn(format="YYYY-MM-DD")})
