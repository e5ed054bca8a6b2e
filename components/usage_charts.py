"""Altair charts of usage figures: bytes in one readable unit, counts and sizes in the tooltips."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd
import streamlit as st

from lib.records import UsageBucket, UsageSummary
from lib.units import human_bytes
from lib.usage import cumulative_by_month

TOP_CATEGORIES = 15
"""More bars than this (subjects, mostly) stop being readable; the CSV has them all."""
_UNITS = (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("KB", 1024))
_MONTH_AXIS = alt.X("label:O", title="Month", axis=alt.Axis(labelAngle=0))
CHART_HEIGHT = 220
"""Short charts: the page is a dashboard, read at a glance without scrolling past one chart."""


def byte_unit(largest: int) -> tuple[str, int]:
    """The unit that keeps the largest value of a chart between 1 and 1024."""
    return next(((name, size) for name, size in _UNITS if largest >= size), ("B", 1))


def frame(buckets: Sequence[UsageBucket], unit: tuple[str, int]) -> pd.DataFrame:
    name, size = unit
    return pd.DataFrame({
        "label": [b.label for b in buckets],
        name: [b.bytes / size for b in buckets],
        "size": [human_bytes(b.bytes) for b in buckets],
        "recordings": [b.count for b in buckets],
    })


def render_month_charts(summary: UsageSummary) -> None:
    """Bytes and recordings uploaded per month, and storage growth over time."""
    if not summary.by_month:
        return
    unit = byte_unit(max(b.bytes for b in summary.by_month))
    months = frame(summary.by_month, unit)
    growth_unit = byte_unit(summary.total_bytes)
    growth = frame(cumulative_by_month(summary), growth_unit)
    tooltip = ["label", "size", "recordings"]
    left, right = st.columns(2)
    with left:
        st.markdown("**Stored per month** (by upload month)")
        st.altair_chart(
            alt.Chart(months).mark_bar().encode(
                x=_MONTH_AXIS, y=alt.Y(f"{unit[0]}:Q", title=unit[0]), tooltip=tooltip,
            ).properties(height=CHART_HEIGHT),
            width="stretch",
        )
    with right:
        st.markdown("**Uploads per month**")
        st.altair_chart(
            alt.Chart(months).mark_bar(color="#59a14f").encode(
                x=_MONTH_AXIS,
                y=alt.Y("recordings:Q", title="Recordings", axis=alt.Axis(tickMinStep=1, format="d")),
                tooltip=tooltip).properties(height=CHART_HEIGHT),
            width="stretch",
        )
    st.markdown("**Storage over time** (running total)")
    st.altair_chart(
        alt.Chart(growth).mark_line(point=True).encode(
            x=_MONTH_AXIS, y=alt.Y(f"{growth_unit[0]}:Q", title=growth_unit[0]), tooltip=tooltip,
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
