"""Administrators only: the whole bucket per user and month, and the bucket-wide check.

The page shows this section only to admins, and lib.usage refuses the data
to anyone else, so hiding it here is convenience, not the protection.
"""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import pandas as pd
import streamlit as st

from components import state_keys
from components.context import UserContext
from components.feedback import user_errors
from components.tables import show_table
from components.usage_reconcile import render_findings
from lib.units import byte_unit, human_bytes
from lib.usage import (
    BucketReconciliation,
    BucketUsage,
    bucket_usage_csv,
    bucket_wide_usage,
    reconcile_bucket,
    row_access,
)


def render_admin(ctx: UserContext) -> None:
    st.divider()
    st.header("Whole bucket (administrators)")
    st.caption("Bytes and files per user and month, from the bucket listing itself (reused for a minute). "
               "Users appear by id: the bucket does not know e-mail addresses.")
    left, right = st.columns(2)
    show = left.button("Show bucket-wide usage", key=state_keys.USAGE_ADMIN_SHOW, icon=":material/storage:")
    refresh = right.button("Refresh the listing", key=state_keys.USAGE_ADMIN_REFRESH, icon=":material/refresh:")
    if show or refresh:
        st.session_state[state_keys.USAGE_ADMIN_OPEN] = True
    if st.session_state.get(state_keys.USAGE_ADMIN_OPEN):
        with user_errors("Listing the whole bucket"):
            usage = _with_progress("Listing the bucket…", lambda progress: bucket_wide_usage(
                ctx.services.store, ctx.caller, progress, refresh=refresh))
            _render_bucket_usage(usage, ctx.user_id)
    _render_bucket_check(ctx)


def _with_progress(label: str, work: Callable[[Callable[[int, int], None]], object]):
    """Run a listing with a live count of what it has seen so far."""
    with st.status(label, expanded=False) as status:
        line = st.empty()

        def progress(objects: int, size: int) -> None:
            line.caption(f"{objects:,} files listed ({human_bytes(size)})")

        result = work(progress)
        status.update(label="Listing finished", state="complete")
    return result


def _render_bucket_usage(usage: BucketUsage, own_id: str) -> None:
    total, files, users = st.columns(3)
    total.metric("Bucket total", human_bytes(usage.total_bytes))
    files.metric("Files", f"{usage.total_objects:,}")
    users.metric("Users with files", len([r for r in usage.by_user if r.user_id]))
    st.caption(f"Bucket `{usage.bucket}`, listed at {usage.listed_at:%H:%M:%S} UTC.")
    per_user, per_month = st.columns(2)
    with per_user:
        st.markdown("**Per user**")
        show_table(pd.DataFrame([{
            "User": _user_label(r.user_id, own_id), "Size": human_bytes(r.bytes), "Files": r.objects,
        } for r in usage.by_user]))
    with per_month:
        st.markdown("**Per month**")
        if usage.by_month:
            name, size = byte_unit(max(r.bytes for r in usage.by_month))
            data = pd.DataFrame({"Month": [r.month for r in usage.by_month],
                                 name: [r.bytes / size for r in usage.by_month],
                                 "Size": [human_bytes(r.bytes) for r in usage.by_month],
                                 "Files": [r.objects for r in usage.by_month]})
            chart = alt.Chart(data).mark_bar().encode(
                x=alt.X("Month:O", axis=alt.Axis(labelAngle=0)), y=alt.Y(f"{name}:Q"),
                tooltip=["Month", "Size", "Files"])
            st.altair_chart(chart, width="stretch")
    with st.expander("Per user and month"):
        show_table(pd.DataFrame([{
            "User": _user_label(r.user_id, own_id), "Month": r.month, "Size": human_bytes(r.bytes),
            "Files": r.objects,
        } for r in usage.rows]))
    st.download_button("Download bucket-wide figures (CSV)", bucket_usage_csv(usage),
                       file_name="pulsevault-bucket-usage.csv", mime="text/csv",
                       key=state_keys.USAGE_ADMIN_CSV, icon=":material/download:")


def _user_label(user_id: str, own_id: str) -> str:
    if not user_id:
        return "(outside any user folder)"
    return f"{user_id} (you)" if user_id == own_id else user_id


def _render_bucket_check(ctx: UserContext) -> None:
    st.subheader("Bucket-wide check")
    if ctx.services.settings.is_demo:
        st.caption("Demo mode: every user's records are in the local database, so every user folder "
                   "is checked.")
    else:
        st.caption("Row-level security lets you read only your own records, so other users' folders are "
                   "listed with their size but not checked; ask those users to run the check on their "
                   "Usage page, or use a service-role script outside PulseVault.")

    def check() -> None:
        st.session_state[state_keys.USAGE_BUCKET_CHECK] = _with_progress("Checking the bucket…", lambda progress: (
            reconcile_bucket(ctx.services.store, ctx.services.settings, ctx.caller,
                             row_access(ctx.repo, ctx.server), progress=progress)))

    if st.button("Check the whole bucket", key=state_keys.USAGE_BUCKET_CHECK_BUTTON, icon=":material/fact_check:"):
        with user_errors("Checking the whole bucket"):
            check()
    found: BucketReconciliation | None = st.session_state.get(state_keys.USAGE_BUCKET_CHECK)
    if found is None:
        return
    files = sum(r.objects_checked for r in found.checked)
    rows = sum(r.rows_checked for r in found.checked)
    summary = f"Checked {len(found.checked)} user folder(s): {files} file(s) against {rows} record(s)."
    render_findings(ctx, list(found.discrepancies), summary, recheck=check, key="bucket", show_user=True)
    if found.unchecked:
        st.info(f"{len(found.unchecked)} user folder(s) not checked: their records are not readable from "
                "this session.", icon=":material/visibility_off:")
        show_table(pd.DataFrame([{
            "User": _user_label(p.user_id, ctx.user_id), "Files": p.objects, "Size": human_bytes(p.bytes),
        } for p in found.unchecked]))
