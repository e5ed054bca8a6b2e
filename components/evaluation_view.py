"""The Evaluate page's pieces: figures per method (and group), Bland–Altman and estimate-vs-truth plots,
the per-recording table, CSV downloads, and re-analysing recordings whose comparison is missing."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd
import streamlit as st

from components import state_keys
from components.context import UserContext
from components.feedback import NoticeKind, notify
from components.files_actions import reanalyse_on_workers
from lib.errors import PulseVaultError
from lib.rppg import METHODS
from lib.study_evaluation import (
    ComparedRecording,
    GroupFigures,
    Grouping,
    StudyEvaluation,
    Uncompared,
    figures_csv,
    group_figures,
    recordings_csv,
)

CHART_HEIGHT = 320
def render_uncompared(uncompared: Sequence[Uncompared], ctx: UserContext) -> None:
    """Recordings with ground truth but no comparison, and a button to re-analyse them with it."""
    if not uncompared:
        return
    count = len(uncompared)
    st.warning(f"{count} recording{'s have' if count != 1 else ' has'} ground truth but no comparison yet; "
               "re-analyse to include them.", icon=":material/warning:")
    with st.expander("Recordings to re-analyse", icon=":material/refresh:"):
        st.dataframe(pd.DataFrame([(u.name, u.reason) for u in uncompared], columns=["Recording", "Why"]),
                     hide_index=True, width="stretch")
        method_col, button_col, _ = st.columns([1, 2, 3], vertical_alignment="bottom")
        method = method_col.selectbox("Method", METHODS, key=state_keys.EVALUATE_METHOD,
                                      help="The headline estimate; every method's is computed and compared.")
        if button_col.button(f"Re-analyse {count}", key=state_keys.EVALUATE_REANALYSE, icon=":material/refresh:"):
            _reanalyse(uncompared, method, ctx)


def _reanalyse(uncompared: Sequence[Uncompared], method: str, ctx: UserContext) -> None:
    bar = st.progress(0.0)
    failures: list[str] = []
    for index, item in enumerate(uncompared):
        bar.progress(index / len(uncompared), text=f"Re-analysing {item.name} ({index + 1} of {len(uncompared)})…")
        try:
            reanalyse_on_workers(item.record_id, method, ctx)
        except PulseVaultError as exc:  # one recording failing does not stop the others
            failures.append(f"{item.name}: {exc}")
    done = len(uncompared) - len(failures)
    if failures:
        notify(f"Re-analysed {done} of {len(uncompared)}. Not re-analysed: " + "; ".join(failures),
               NoticeKind.WARNING)
    else:
        notify(f"Re-analysed {done} recording{'s' if done != 1 else ''} with {method}.")
    st.rerun()


def render_figures(evaluation: StudyEvaluation) -> None:
    """One row per group and method: the toolbox's figures with standard errors, and Bland–Altman limits."""
    rows = []
    for f in evaluation.figures:
        m, ba = f.metrics, f.bland_altman
        rows.append({
            "Group": f.group, "Method": f.method, "Recordings": f.recordings, "No HR": f.without_hr,
            "MAE (bpm)": _pm(m.mae_bpm, m.mae_se) if m else "—", "RMSE (bpm)": _pm(m.rmse_bpm, m.rmse_se) if m else "—",
            "MAPE (%)": _pm(m.mape_pct, m.mape_se) if m else "—",
            "Pearson r": "—" if m is None or m.pearson_r is None else _pm(m.pearson_r, m.pearson_se, 2),
            "Within 5 bpm (%)": f"{f.within_5_pct:.0f}",
            "Mean SNR (dB)": "—" if f.mean_snr_db is None else f"{f.mean_snr_db:.1f}",
            "Bias [95% LoA] (bpm)": "—" if ba is None else
            f"{ba.bias_bpm:+.1f} [{ba.lower_loa_bpm:+.1f}, {ba.upper_loa_bpm:+.1f}]",
        })
    frame = pd.DataFrame(rows)
    if evaluation.grouping is Grouping.NONE:
        frame = frame.drop(columns="Group")
    st.dataframe(frame, hide_index=True, width="stretch", key=state_keys.EVALUATE_FIGURES)
    st.caption("Every method's estimate comes from the same decode of each recording (an analysis saved before "
               "every method was kept counts for its one method). Mean ± standard error, as rPPG-Toolbox reports "
               "them. Recordings without a heart rate count as misses in *Within 5 bpm* and are left out of the "
               "error figures. SNR is rPPG-Toolbox's: the estimated pulse around the true heart rate and its "
               "harmonic, against the rest of 45–150 bpm.")


def render_plots(compared: Sequence[ComparedRecording]) -> None:
    """Bland–Altman (bias and limits per method, from lib.rppg.evaluation) and estimate against truth."""
    points = pd.DataFrame([
        {"Recording": r.name, "Method": r.method, "Truth (bpm)": r.truth_bpm, "Estimate (bpm)": r.estimate_bpm,
         "Mean (bpm)": (r.estimate_bpm + r.truth_bpm) / 2, "Estimate − truth (bpm)": r.error_bpm}
        for r in compared if r.estimate_bpm is not None
    ])
    if points.empty:
        return
    bland, scatter = st.columns(2)
    with bland:
        st.markdown("**Bland–Altman**")
        st.altair_chart(_bland_altman(points, group_figures(compared, Grouping.NONE)), width="stretch")
    with scatter:
        st.markdown("**Estimate against truth**")
        st.altair_chart(_scatter(points), width="stretch")


def _bland_altman(points: pd.DataFrame, per_method: Sequence[GroupFigures]) -> alt.Chart:
    diff = "Estimate − truth (bpm)"
    lines = pd.DataFrame([
        {"Method": f.method, "Line": line, "Value": value}
        for f in per_method if f.bland_altman is not None
        for line, value in (("bias", f.bland_altman.bias_bpm), ("lower limit", f.bland_altman.lower_loa_bpm),
                            ("upper limit", f.bland_altman.upper_loa_bpm))
    ])
    dots = alt.Chart(points).mark_circle(size=60).encode(
        x=alt.X("Mean (bpm)", scale=alt.Scale(zero=False)), y=alt.Y(diff), color="Method",
        tooltip=["Recording", "Method", "Truth (bpm)", "Estimate (bpm)"])
    rules = alt.Chart(lines).mark_rule().encode(
        y="Value", color="Method", strokeDash=alt.condition(alt.datum.Line == "bias", alt.value([1, 0]),
                                                            alt.value([4, 4])),
        tooltip=["Method", "Line", alt.Tooltip("Value", format=".1f")])
    return (dots + rules).properties(height=CHART_HEIGHT)


def _scatter(points: pd.DataFrame) -> alt.Chart:
    low = float(min(points["Truth (bpm)"].min(), points["Estimate (bpm)"].min()))
    high = float(max(points["Truth (bpm)"].max(), points["Estimate (bpm)"].max()))
    identity = alt.Chart(pd.DataFrame({"x": [low, high], "y": [low, high]})).mark_line(
        color="gray", strokeDash=[4, 4]).encode(x="x", y="y")
    dots = alt.Chart(points).mark_circle(size=60).encode(
        x=alt.X("Truth (bpm)", scale=alt.Scale(zero=False)), y=alt.Y("Estimate (bpm)", scale=alt.Scale(zero=False)),
        color="Method", tooltip=["Recording", "Method", "Truth (bpm)", "Estimate (bpm)"])
    return (identity + dots).properties(height=CHART_HEIGHT)


def render_recordings(evaluation: StudyEvaluation) -> None:
    """One row per recording: its truth, then each method's estimate, error and SNR side by side."""
    frame = _recordings_frame(evaluation.compared)
    numbers = [c for c in frame.columns if c.endswith(("(bpm)", "(dB)"))]
    st.dataframe(frame, hide_index=True, width="stretch", key=state_keys.EVALUATE_RECORDINGS,
                 column_config={c: st.column_config.NumberColumn(format="%.1f") for c in numbers})
    figures, recordings, _ = st.columns([1, 1, 2])
    figures.download_button("Figures CSV", data=figures_csv(evaluation), file_name="pulsevault-evaluation.csv",
                            mime="text/csv", key=state_keys.EVALUATE_FIGURES_CSV, icon=":material/download:",
                            on_click="ignore")
    recordings.download_button("Per-recording CSV", data=recordings_csv(evaluation),
                               file_name="pulsevault-evaluation-recordings.csv", mime="text/csv",
                               key=state_keys.EVALUATE_RECORDINGS_CSV, icon=":material/download:", on_click="ignore")


def _recordings_frame(compared: Sequence[ComparedRecording]) -> pd.DataFrame:
    """Compared rows (one per recording and method) pivoted to one row per recording; an analysis saved with one
    method only leaves the others' cells empty."""
    rows: dict[str, dict[str, object]] = {}
    for r in compared:
        row = rows.setdefault(r.record_id, {"Recording": r.name, "Subject": r.subject, "Session": r.session,
                                            "Tags": list(r.tags), "Truth (bpm)": r.truth_bpm})
        row |= {f"{r.method} (bpm)": r.estimate_bpm, f"{r.method} error (bpm)": r.error_bpm,
                f"{r.method} SNR (dB)": r.snr_db}
    present = {r.method for r in compared}
    methods = [m for m in METHODS if m in present] + sorted(present - set(METHODS))
    columns = ["Recording", "Subject", "Session", "Tags", "Truth (bpm)",
               *(f"{m}{part}" for m in methods for part in (" (bpm)", " error (bpm)", " SNR (dB)"))]
    return pd.DataFrame(list(rows.values()), columns=columns)


def _pm(value: float, se: float | None, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if se is None else f"{value:.{digits}f} ± {se:.{digits}f}"
