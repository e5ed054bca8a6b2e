"""The quick-look pulse result: heart rate, SNR, quality flags and two small plots.

Used by the Upload page (before a recording is stored) and by the My files
detail panel (the summary saved in the record's ``analysis`` column).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from lib.errors import AnalysisError
from lib.rppg import AnalysisSummary, Severity

PLOT_HEIGHT = 180


def render_quick_look(summary: AnalysisSummary | None, *, error: str | None = None) -> None:
    """Show one analysis: numbers first, then flags, then the pulse wave and the HR track."""
    if summary is None:
        st.info(error or "No quick-look pulse analysis for this recording.", icon=":material/monitor_heart:")
        return
    _numbers(summary)
    _methods(summary)
    _flags(summary)
    _plots(summary)


def render_saved_analysis(analysis: dict[str, Any] | None) -> None:
    """Show the summary stored with a record (``FileRecord.analysis``)."""
    if analysis is None:
        render_quick_look(None)
        return
    try:
        summary = AnalysisSummary.from_json(analysis)
    except AnalysisError as exc:
        render_quick_look(None, error=str(exc))
        return
    render_quick_look(summary)


def _numbers(summary: AnalysisSummary) -> None:
    hr, snr, gt, frames = st.columns(4)
    hr.metric("Heart rate", "—" if summary.hr_bpm is None else f"{summary.hr_bpm:.0f} bpm",
              help=f"Spectral peak of the {summary.method} pulse signal within the heart-rate band it was "
                   "analysed with (the study's setting: at rest or exercise).")
    snr.metric("SNR", "—" if summary.snr_db is None else f"{summary.snr_db:.1f} dB",
               help="Power at the heart rate and its first harmonic against the rest of the band.")
    if summary.ground_truth_hr_bpm is not None:
        delta = None if summary.hr_error_bpm is None else f"{summary.hr_error_bpm:+.1f} bpm vs. estimate"
        gt.metric("Ground truth", f"{summary.ground_truth_hr_bpm:.0f} bpm", delta=delta, delta_color="off")
    else:
        gt.metric("Method", summary.method)
    frames.metric("Frames analysed", f"{summary.frames_analysed:,}",
                  help=f"Analysis took {summary.seconds_taken:.1f} s.")


def _methods(summary: AnalysisSummary) -> None:
    """Every method's estimate from the same decode, small, under the headline (older analyses hold none)."""
    if not summary.methods:
        return
    truth = summary.ground_truth_hr_bpm
    frame = pd.DataFrame([
        {"Method": m.method + (" (headline)" if m.method == summary.method else ""), "Heart rate (bpm)": m.hr_bpm,
         "SNR (dB)": m.snr_db} | ({} if truth is None else
                                  {"Error (bpm)": None if m.hr_bpm is None else m.hr_bpm - truth})
        for m in summary.methods
    ])
    st.dataframe(frame, hide_index=True, column_config={
        c: st.column_config.NumberColumn(format="%+.1f" if c.startswith("Error") else "%.1f")
        for c in frame.columns if c != "Method"})


def _flags(summary: AnalysisSummary) -> None:
    if not summary.flags:
        st.success("No quality problems found: this recording looks usable for rPPG.",
                   icon=":material/check_circle:")
        return
    for flag in summary.flags:
        if flag.severity is Severity.CRITICAL:
            st.error(flag.message, icon=":material/error:")
        else:
            st.warning(flag.message, icon=":material/warning:")


def _plots(summary: AnalysisSummary) -> None:
    pulse_col, track_col = st.columns(2)
    with pulse_col:
        st.caption("Pulse signal (unit variance)")
        if summary.pulse and summary.pulse_fs > 0:
            pulse = pd.DataFrame({
                "Time (s)": [i / summary.pulse_fs for i in range(len(summary.pulse))],
                "Pulse": list(summary.pulse),
            })
            st.line_chart(pulse, x="Time (s)", y="Pulse", height=PLOT_HEIGHT, color="#c2185b")
        else:
            st.caption("No pulse signal could be extracted.")
    with track_col:
        st.caption("Heart rate over time (10 s windows)")
        if summary.hr_track:
            track = pd.DataFrame(summary.hr_track, columns=["Time (s)", "Heart rate (bpm)"])
            st.line_chart(track, x="Time (s)", y="Heart rate (bpm)", height=PLOT_HEIGHT)
        else:
            st.caption("Too short for a heart-rate track.")
