"""How good the quick look is across a researcher's recordings that have ground truth.

Each recording's saved analysis (the ``analysis`` column, written by the upload or a re-analysis with its
ground truth attached) gives every method's estimate from the one decode (POS, CHROM, GREEN: one compared
row per recording and method) and the reference heart rate over the same span, so nothing is decoded again
here; an analysis saved before every method was kept gives its one method's row. Per method, and per group
of a research field or tag when asked (a lab checks bias across subject groups this way), the figures are
:mod:`lib.rppg.evaluation`'s: MAE, RMSE, MAPE, Pearson r, the share within 5 bpm and Bland–Altman agreement,
with the mean SNR beside them: rPPG-Toolbox's per-video SNR of the estimated pulse around the TRUE heart rate
(``lib.rppg.evaluation.pulse_snr_db``), computed by the analysis on each method's full-rate pulse, or for an
older analysis from the one pulse wave it saved. Recordings with ground truth but no comparison yet
(analysed before it was attached, or the analysis is unreadable) are listed with the reason, to be
re-analysed.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from lib.errors import AnalysisError
from lib.records import FileRecord, Status
from lib.repository import Repository
from lib.rppg.evaluation import BlandAltman, Metrics, bland_altman, metrics, pulse_snr_db, within_pct
from lib.rppg.methods import METHODS
from lib.rppg.results import AnalysisSummary
from lib.rppg.spectrum import RESTING_BAND_HZ

ALL = "all recordings"
"""The group label when the figures are not broken down."""
NO_VALUE = "(none)"
"""The group of recordings whose research field is empty (or that have no tags)."""


class Grouping(StrEnum):
    """What the figures may be broken down by: a research field, or each tag (a recording with several tags
    counts in each of their groups)."""

    NONE = "none"
    SUBJECT = "subject"
    SESSION = "session"
    TAG = "tag"


@dataclass(frozen=True)
class ComparedRecording:
    """One recording's estimate by one method against its ground truth, from its saved analysis."""

    record_id: str
    name: str
    subject: str
    session: str
    tags: tuple[str, ...]
    method: str
    estimate_bpm: float | None  # None: the quick look found no heart rate
    truth_bpm: float
    snr_db: float | None  # the saved pulse around the true rate (rPPG-Toolbox); None without a saved pulse

    @property
    def error_bpm(self) -> float | None:
        return None if self.estimate_bpm is None else self.estimate_bpm - self.truth_bpm

    def groups(self, grouping: Grouping) -> tuple[str, ...]:
        if grouping is Grouping.SUBJECT:
            return (self.subject or NO_VALUE,)
        if grouping is Grouping.SESSION:
            return (self.session or NO_VALUE,)
        if grouping is Grouping.TAG:
            return self.tags or (NO_VALUE,)
        return (ALL,)


@dataclass(frozen=True)
class Uncompared:
    """A recording with ground truth whose saved analysis holds no comparison, and why."""

    record_id: str
    name: str
    reason: str


@dataclass(frozen=True)
class GroupFigures:
    """The figures of one method over one group of recordings."""

    group: str
    method: str
    recordings: int
    without_hr: int  # recordings where the quick look found no heart rate (misses in within_5_pct)
    within_5_pct: float
    mean_snr_db: float | None
    metrics: Metrics | None  # None when no recording of the group has an estimate
    bland_altman: BlandAltman | None


@dataclass(frozen=True)
class StudyEvaluation:
    compared: tuple[ComparedRecording, ...]
    uncompared: tuple[Uncompared, ...]
    figures: tuple[GroupFigures, ...]
    grouping: Grouping


def evaluate_study(repo: Repository, grouping: Grouping = Grouping.NONE) -> StudyEvaluation:
    """Every ready recording of the user with ground truth, compared from its saved analysis."""
    compared: list[ComparedRecording] = []
    uncompared: list[Uncompared] = []
    for record in repo.iter_all((Status.READY,)):
        if not record.ground_truth_key:
            continue
        result = compare_saved(record)
        if isinstance(result, Uncompared):
            uncompared.append(result)
        else:
            compared.extend(result)
    return StudyEvaluation(tuple(compared), tuple(uncompared), group_figures(compared, grouping), grouping)


def compare_saved(record: FileRecord) -> tuple[ComparedRecording, ...] | Uncompared:
    """A recording's saved estimates against its ground truth, one per method it holds (every method's, or the
    headline's alone in an older analysis), or why there is none to compare."""
    if record.analysis is None:
        return Uncompared(record.id, record.original_name, "not analysed yet")
    try:
        summary = AnalysisSummary.from_json(record.analysis)
    except AnalysisError:
        return Uncompared(record.id, record.original_name, "its saved analysis is unreadable")
    truth = summary.ground_truth_hr_bpm
    if truth is None:
        return Uncompared(record.id, record.original_name,
                          "analysed without its ground truth (or the truth gives no heart rate over the span)")
    estimates = ([(m.method, m.hr_bpm, m.truth_snr_db) for m in summary.methods] if summary.methods
                 else [(summary.method, summary.hr_bpm, snr_around_truth(summary))])
    r = record.research
    return tuple(ComparedRecording(record.id, record.original_name, r.subject_id, r.session_label, r.tags,
                                   method, hr, truth, snr) for method, hr, snr in estimates)


def snr_around_truth(summary: AnalysisSummary) -> float | None:
    """For an analysis saved without every method: rPPG-Toolbox's per-video SNR, the saved pulse's power around
    the true rate and its harmonic against the rest of the toolbox's band (0.75–2.5 Hz). The saved pulse is
    band-limited, so its thinning for the chart aliases nothing; None when the analysis saved no pulse."""
    if not summary.pulse or summary.pulse_fs <= 0 or summary.ground_truth_hr_bpm is None:
        return None
    return pulse_snr_db(np.asarray(summary.pulse), summary.pulse_fs, summary.ground_truth_hr_bpm, RESTING_BAND_HZ)


def group_figures(rows: Iterable[ComparedRecording], grouping: Grouping) -> tuple[GroupFigures, ...]:
    """Figures per (group, method), in group order, then the methods in ``METHODS`` order (the default first)."""
    buckets: dict[tuple[str, str], list[ComparedRecording]] = {}
    for row in rows:
        for group in row.groups(grouping):
            buckets.setdefault((group, row.method), []).append(row)
    ordered = sorted(buckets, key=lambda key: (key[0], _method_order(key[1])))
    return tuple(_figures(group, method, buckets[group, method]) for group, method in ordered)


def _method_order(method: str) -> tuple[int, str]:
    return (METHODS.index(method) if method in METHODS else len(METHODS), method)


def _figures(group: str, method: str, rows: list[ComparedRecording]) -> GroupFigures:
    paired = [(r.estimate_bpm, r.truth_bpm) for r in rows if r.estimate_bpm is not None]
    estimates = [e for e, _ in paired]
    truths = [t for _, t in paired]
    snrs = [r.snr_db for r in rows if r.snr_db is not None]
    return GroupFigures(
        group=group, method=method, recordings=len(rows), without_hr=len(rows) - len(paired),
        within_5_pct=within_pct([r.estimate_bpm for r in rows], [r.truth_bpm for r in rows]),
        mean_snr_db=sum(snrs) / len(snrs) if snrs else None,
        metrics=metrics(estimates, truths) if paired else None,
        bland_altman=bland_altman(estimates, truths) if paired else None,
    )


def recordings_csv(evaluation: StudyEvaluation) -> bytes:
    """One row per compared recording and method: what a lab re-plots or tests in its own tools."""
    header = ("record_id", "name", "subject", "session", "tags", "method", "estimate_bpm", "truth_bpm",
              "error_bpm", "snr_db")
    rows = [(r.record_id, r.name, r.subject, r.session, ";".join(r.tags), r.method, _num(r.estimate_bpm),
             _num(r.truth_bpm), _num(r.error_bpm), _num(r.snr_db)) for r in evaluation.compared]
    return _csv(header, rows)


def figures_csv(evaluation: StudyEvaluation) -> bytes:
    """One row per group and method, with standard errors and Bland–Altman limits."""
    header = ("grouping", "group", "method", "recordings", "without_hr", "mae_bpm", "mae_se", "rmse_bpm",
              "rmse_se", "mape_pct", "mape_se", "pearson_r", "pearson_se", "within_5_pct", "mean_snr_db",
              "bias_bpm", "lower_loa_bpm", "upper_loa_bpm")
    rows = []
    for f in evaluation.figures:
        m, ba = f.metrics, f.bland_altman
        stats = ((m.mae_bpm, m.mae_se, m.rmse_bpm, m.rmse_se, m.mape_pct, m.mape_se, m.pearson_r, m.pearson_se)
                 if m else (None,) * 8)
        limits = (ba.bias_bpm, ba.lower_loa_bpm, ba.upper_loa_bpm) if ba else (None,) * 3
        rows.append((str(evaluation.grouping), f.group, f.method, f.recordings, f.without_hr,
                     *map(_num, stats), _num(f.within_5_pct), _num(f.mean_snr_db), *map(_num, limits)))
    return _csv(header, rows)


def _num(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _csv(header: tuple[str, ...], rows: Iterable[tuple[object, ...]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")
