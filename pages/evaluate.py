"""Evaluate: how the quick look agrees with ground truth across your recordings, per method and group."""

from __future__ import annotations

import streamlit as st

from components import state_keys
from components.context import user_context
from components.evaluation_view import (
    render_figures,
    render_plots,
    render_recordings,
    render_uncompared,
)
from components.feedback import show_notice, user_errors
from lib.study_evaluation import Grouping, evaluate_study

GROUPING_LABELS = {Grouping.NONE: "Nothing", Grouping.SUBJECT: "Subject", Grouping.SESSION: "Session",
                   Grouping.TAG: "Tag"}


def render() -> None:
    ctx = user_context()
    st.title("Evaluate")
    show_notice()
    st.caption("Each recording's saved quick look against its ground truth (attach ground truth in My files). "
               "Nothing is decoded again unless you re-analyse.")
    grouping = st.segmented_control("Break down by", list(Grouping), format_func=GROUPING_LABELS.__getitem__,
                                    default=Grouping.NONE, key=state_keys.EVALUATE_GROUPING) or Grouping.NONE
    evaluation = None
    with user_errors("Evaluating your recordings"):
        evaluation = evaluate_study(ctx.repo, Grouping(grouping))
    if evaluation is None:
        return
    if not evaluation.compared and not evaluation.uncompared:
        st.info("None of your recordings has ground truth yet. Select one in My files and attach its reference "
                "signal or heart rate under *Ground truth*.", icon=":material/ecg_heart:")
        return
    render_uncompared(evaluation.uncompared, ctx)
    if evaluation.compared:
        render_figures(evaluation)
        render_plots(evaluation.compared)
        render_recordings(evaluation)


if __name__ == "__main__":  # run by st.navigation
    render()
