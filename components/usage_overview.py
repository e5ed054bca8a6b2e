"""The top of the Usage page: storage health, totals against the quota, the largest recordings."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import state_keys
from components.tables import show_table
from components.text import literal
from lib.storage import HealthStatus
from lib.units import human_bytes
from lib.usage import UserUsage, usage_csv

SLOW_STORAGE_MS = 2_000
"""A HEAD slower than this still works, but uploads and playback will feel it."""


def render_health(health: HealthStatus) -> None:
    if not health.ok:
        st.error(f"**Storage check failed.** {literal(health.message)} Uploads, playback and the bucket check will "
                 "not work until this is fixed; the figures below come from the metadata and may be "
                 "out of date.", icon=":material/cloud_off:")
    elif health.latency_ms > SLOW_STORAGE_MS:
        st.warning(f"Storage is reachable but slow ({health.latency_ms:,.0f} ms to answer).",
                   icon=":material/speed:")
    else:
        st.caption(f":material/cloud_done: Storage OK: {health.message} ({health.latency_ms:,.0f} ms)")


def render_totals(usage: UserUsage) -> None:
    stored, count, remaining = st.columns(3)
    stored.metric("Stored", human_bytes(usage.used_bytes), help="Ready recordings only (originals).")
    count.metric("Recordings", f"{usage.summary.total_count:,}")
    remaining.metric("Quota left", human_bytes(usage.remaining_bytes))
    share = "<0.1%" if 0 < usage.used_fraction < 0.001 else f"{usage.used_fraction:.1%}"
    text = f"{human_bytes(usage.used_bytes)} of {human_bytes(usage.quota_bytes)} ({share})"
    st.progress(min(usage.used_fraction, 1.0), text=text)
    if usage.over_quota:
        st.error("You are over your quota: new uploads are refused until you delete recordings or an "
                 "administrator raises the quota.", icon=":material/block:")


def render_largest(usage: UserUsage) -> None:
    st.subheader("Ten largest recordings")
    if not usage.summary.largest:
        st.caption("Nothing stored yet.")
        return
    show_table(pd.DataFrame([{
        "Recording": r.original_name,
        "Size": human_bytes(r.size_bytes),
        "Subject": r.research.subject_id,
        "Session": r.research.session_label,
        "Type": r.content_type,
        "Lossless": "" if r.video is None else ("yes" if r.video.lossless else "no"),
        "Uploaded": r.created_at.strftime("%Y-%m-%d %H:%M"),
    } for r in usage.summary.largest]))


def render_export(usage: UserUsage) -> None:
    st.download_button("Download these figures (CSV)", usage_csv(usage), file_name="pulsevault-usage.csv",
                       mime="text/csv", key=state_keys.USAGE_CSV, icon=":material/download:")
