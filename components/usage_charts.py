"""Altair charts of usage figures: bytes in one readable unit, counts and sizes in the tooltips."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd
import streamlit as st

from lib.records import UsageBucket, UsageSummary
from lib.units import byte_unit, human_bytes
from lib.usage import upload_history

TOP_CATEGORIES = 15
"""More bars than this (subjects, mostly) stop being readable; the CSV has them all."""
CHART_HEIGHT = 220
"""Short charts: the page is a dashboard, read at a glance without scrolling past one chart."""


def frame(buckets: Sequence[UsageBucket], unit: tuple[str, int]) -> pd.DataFrame:
    name, size = unit
    return pd.DataFrame({
        "label": [b.label for b in buckets],
        name: [b.bytes / size for b in buckets],
        "size": [human_bytes(b.bytes) for b in buckets],
        "recordings": [b.count for b in buckets],
    })


def render_history_charts(summary: UsageSummary) -> None:
    """Bytes and recordings uploaded per day or month (days when the history is short), and storage growth."""
    history = upload_history(summary)
    if not history.uploads:
        return
    period = history.period.value
    unit = byte_unit(max(b.bytes for b in history.uploads))
    uploads = frame(history.uploads, unit)
    growth_unit = byte_unit(summary.total_bytes)
    growth = frame(history.stored, growth_unit)
    axis = alt.X("label:O", title=period, axis=alt.Axis(labelAngle=0))
    tooltip = ["label", "size", "recordings"]
    left, right = st.columns(2)
    with left:
        st.markdown(f"**Stored per {period.lower()}** (by upload {period.lower()})")
        st.altair_chart(
            alt.Chart(uploads).mark_bar().encode(
                x=axis, y=alt.Y(f"{unit[0]}:Q", title=unit[0]), tooltip=tooltip,
            ).properties(height=CHART_HEIGHT),
            width="stretch",
        )
    with right:
        st.markdown(f"**Uploads per {period.lower()}**")
        st.altair_chart(
            alt.Chart(uploads).mark_bar(color="#59a14f").encode(
                x=axis,
                y=alt.Y("recordings:Q", title="Recordings", axis=alt.Axis(tickMinStep=1, format="d")),
                tooltip=tooltip).properties(height=CHART_HEIGHT),
            width="stretch",
        )
    st.markdown("**Storage over time** (running total)")
    st.altair_chart(
        alt.Chart(growth).mark_line(point=True).encode(
            x=axis, y=alt.Y(f"{growth_unit[0]}:Q", title=growth_unit[0]), tooltip=tooltip,
        ).properties(height=CHART_HEIGHT),
        width="stretch",
    )


def render_breakdown(title: str, buckets: Sequence[UsageBucket], *, category: str) -> None:
    """A horizontal bar per category, largest first."""
    st.markdown(f"**{title}**")
    if not buckets:
        st.caption("Nothing stored yet.")
        return
    shown = list(buckets[:TOP_CATEGORIES])
    unit = byte_unit(max(b.bytes for b in shown))
    st.altair_chart(
        alt.Chart(frame(shown, unit)).mark_bar().encode(
            y=alt.Y("label:N", title=category, sort="-x"), x=alt.X(f"{unit[0]}:Q", title=unit[0]),
            tooltip=["label", "size", "recordings"]),
        width="stretch",
    )
    if len(buckets) > len(shown):
        st.caption(f"The {len(shown)} largest of {len(buckets)}; the CSV export has them all.")
