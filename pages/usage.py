"""Usage: storage health, what you store (by month, type, lossless, subject), your studies, the bucket check;
for administrators also the whole bucket and every study."""

from __future__ import annotations

import streamlit as st

from components.context import user_context
from components.feedback import show_notice, user_errors
from components.usage_admin import render_admin
from components.usage_charts import render_breakdown, render_history_charts
from components.usage_overview import render_export, render_health, render_largest, render_totals
from components.usage_reconcile import render_own_check
from components.usage_studies import render_admin_studies, render_studies_usage
from lib.demo import seeding_done
from lib.usage import storage_health, user_usage


def render() -> None:
    ctx = user_context()
    settings = ctx.services.settings
    st.title("Usage")
    show_notice()
    render_health(storage_health(ctx.services.store))
    if settings.is_demo and not seeding_done():
        st.info("The demo's sample recording is still being prepared; reload in a moment to see it here.",
                icon=":material/hourglass_top:")
    with user_errors("Loading your usage figures"):
        usage = user_usage(ctx.repo, settings)
        render_totals(usage)
        render_history_charts(usage.summary)
        kinds, lossless, subjects = st.columns(3)
        with kinds:
            render_breakdown("By content type", usage.summary.by_content_type, category="Type")
        with lossless:
            render_breakdown("Lossless or lossy", usage.summary.by_lossless, category="Encoding")
        with subjects:
            render_breakdown("By subject", usage.summary.by_subject, category="Subject")
        render_largest(usage)
        render_export(usage)
    render_studies_usage(ctx)
    st.divider()
    render_own_check(ctx)
    if ctx.caller.is_admin:  # lib.usage checks the role again; hiding the section is convenience
        render_admin(ctx)
        render_admin_studies(ctx)


if __name__ == "__main__":  # run by st.navigation
    render()
