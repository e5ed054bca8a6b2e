"""Jobs: your batch jobs and your studies' (re-analyse, evaluate) with live progress, errors per recording, and
cancel."""

from __future__ import annotations

import streamlit as st

from components.feedback import show_notice
from components.jobs_view import render_jobs


def render() -> None:
    st.title("Jobs")
    show_notice()
    st.caption("Batch work over many recordings runs in the background and survives a restart of the app. "
               "Start a job from My files, or over a study from the Studies page.")
    render_jobs()


if __name__ == "__main__":  # run by st.navigation
    render()
