"""Study-level evaluation (lib.study_evaluation) from saved analyses on SQLite: which recordings are
compared, figures per method and per group, the reasons for the rest, and the CSVs."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from lib.keys import record_keys
from lib.records import FileRecord, GroundTruthFile, NewRecord, ResearchFields
from lib.repository import SqliteRepository
from lib.rppg import AnalysisSummary
from lib.rppg.results import MethodEstimate
from lib.study_evaluation import ALL, NO_VALUE, Grouping, evaluate_study, figures_csv, recordings_csv
from tests.support.records import server_of

USER = "0b6f3c5e-5a55-4c1e-9d7c-1f2a3b4c5d6e"
PULSE_FS = 15.0
"""Samples per second of a saved pulse, as the analysis thins it for its chart."""


@pytest.fixture
def repo(tmp_path: Path) -> SqliteRepository:
    return SqliteRepository(tmp_path / "demo.db", USER)


def add(repo: SqliteRepository, name: str, *, method: str | None = "POS", hr: float | None = 70.0,
        truth: float | None = 72.0, research: ResearchFields | None = None, pulse_bpm: float | None = None
        ) -> FileRecord:
    """A ready recording with ground truth, analysed by ``method`` (None: not analysed) with the comparison
    ``hr`` against ``truth``; its saved pulse beats at ``pulse_bpm`` (None: no pulse saved). Its analysis has no
    block of every method's estimate, as those saved before it (``with_every`` adds one)."""
    record_id = str(uuid.uuid4())
    keys = record_keys(USER, record_id, "avi", datetime.now(UTC))
    server = server_of(repo)
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket="b", original_name=name,
                             content_type="video/x-msvideo", size_bytes=10, research=research or ResearchFields()),
                   quota_bytes=10**12)
    pulse = () if pulse_bpm is None else tuple(np.sin(2 * np.pi * pulse_bpm / 60 * np.arange(300) / PULSE_FS))
    summary = AnalysisSummary(method=method or "POS", hr_bpm=hr, snr_db=3.0, hr_track=(), pulse=pulse,
                              pulse_fs=PULSE_FS if pulse else 0.0,
                              flags=(), frames_analysed=300, seconds_taken=0.5, ground_truth_hr_bpm=truth)
    server.mark_ready(record_id, size_bytes=10, sha256=None, video=None, thumbnail_key=None, preview_key=None,
                      analysis=summary.to_json() if method else None)
    return server.set_ground_truth(record_id, GroundTruthFile(keys.ground_truth("gt.csv"), "gt.csv", 5))


def test_figures_per_method_from_saved_analyses(repo) -> None:
    add(repo, "a.avi", hr=70.0, truth=72.0)
    add(repo, "b.avi", hr=80.0, truth=78.0)
    add(repo, "c.avi", hr=90.0, truth=95.0)
    add(repo, "d.avi", hr=None, truth=60.0)  # no heart rate found: a miss, not in the error figures
    add(repo, "e.avi", method="CHROM", hr=60.0, truth=61.0)
    server_of(repo).set_ground_truth(add(repo, "no truth.avi").id, None)
    ev = evaluate_study(repo)
    assert {r.name for r in ev.compared} == {"a.avi", "b.avi", "c.avi", "d.avi", "e.avi"}
    pos, chrom = ev.figures  # the methods in METHODS order: the default first
    assert (pos.group, pos.method, pos.recordings, pos.without_hr) == (ALL, "POS", 4, 1)
    assert pos.metrics.mae_bpm == pytest.approx(3.0) and pos.within_5_pct == 75.0
    assert pos.bland_altman.bias_bpm == pytest.approx(-5.0 / 3.0)
    assert (chrom.method, chrom.metrics.n, chrom.metrics.pearson_r) == ("CHROM", 1, None)
    assert pos.mean_snr_db is None  # no saved pulse: no SNR around the truth (the quick look's own is not it)


def test_snr_is_the_saved_pulse_around_the_true_rate(repo) -> None:
    add(repo, "on truth.avi", hr=90.0, truth=72.0, pulse_bpm=72.0)  # the pulse is right, the peak pick was not
    add(repo, "off truth.avi", hr=110.0, truth=72.0, pulse_bpm=110.0)
    add(repo, "no pulse.avi", hr=70.0, truth=72.0)
    snr = {r.name: r.snr_db for r in evaluate_study(repo).compared}
    assert snr["on truth.avi"] > 10 and snr["off truth.avi"] < -10 and snr["no pulse.avi"] is None
    [pos] = evaluate_study(repo).figures
    assert pos.mean_snr_db == pytest.approx((snr["on truth.avi"] + snr["off truth.avi"]) / 2)


def test_recordings_without_a_comparison_say_why(repo) -> None:
    add(repo, "old.avi", truth=None)
    add(repo, "new.avi", method=None)
    ev = evaluate_study(repo)
    assert ev.compared == () and ev.figures == ()
    reasons = {u.name: u.reason for u in ev.uncompared}
    assert reasons["new.avi"] == "not analysed yet" and "without its ground truth" in reasons["old.avi"]


def test_grouping_by_subject_and_by_tag(repo) -> None:
    add(repo, "a.avi", hr=70.0, truth=72.0, research=ResearchFields(subject_id="S1", tags=("dark", "rest")))
    add(repo, "b.avi", hr=80.0, truth=70.0, research=ResearchFields(subject_id="S2", tags=("rest",)))
    add(repo, "c.avi", hr=75.0, truth=75.0)
    by_subject = {f.group: f.metrics.mae_bpm for f in evaluate_study(repo, Grouping.SUBJECT).figures}
    assert by_subject == {"S1": 2.0, "S2": 10.0, NO_VALUE: 0.0}
    by_tag = {f.group: f.recordings for f in evaluate_study(repo, Grouping.TAG).figures}
    assert by_tag == {"dark": 1, "rest": 2, NO_VALUE: 1}


def test_csvs_hold_every_recording_and_every_group(repo) -> None:
    add(repo, "a.avi", hr=70.0, truth=72.0, research=ResearchFields(subject_id="S1", tags=("x", "y")))
    add(repo, "b.avi", hr=None, truth=72.0)
    ev = evaluate_study(repo, Grouping.SUBJECT)
    rows = list(csv.DictReader(io.StringIO(recordings_csv(ev).decode())))
    assert [(r["name"], r["tags"], r["estimate_bpm"], r["error_bpm"]) for r in rows] == [
        ("a.avi", "x;y", "70.000", "-2.000"), ("b.avi", "", "", "")]
    figures = list(csv.DictReader(io.StringIO(figures_csv(ev).decode())))
    assert [(f["grouping"], f["group"], f["mae_bpm"], f["within_5_pct"]) for f in figures] == [
        ("subject", NO_VALUE, "", "0.000"), ("subject", "S1", "2.000", "100.000")]


def with_every(repo: SqliteRepository, record: FileRecord, pos: float | None, chrom: float | None,
               green: float | None) -> None:
    """Give the record's analysis the block of every method, each with an SNR around the truth of its estimate's
    tens digit."""
    every = tuple(MethodEstimate(name, hr, 1.0, None if hr is None else hr // 10)
                  for name, hr in (("POS", pos), ("CHROM", chrom), ("GREEN", green)))
    summary = AnalysisSummary.from_json(record.analysis)
    server_of(repo).set_analysis(record.id, replace(summary, methods=every).to_json())


def test_every_method_of_an_analysis_is_a_compared_row(repo) -> None:
    with_every(repo, add(repo, "a.avi", hr=70.0, truth=72.0, research=ResearchFields(subject_id="S1")),
               70.0, 75.0, None)
    with_every(repo, add(repo, "b.avi", hr=82.0, truth=80.0), 82.0, 90.0, 81.0)
    add(repo, "old.avi", hr=80.0, truth=78.0, pulse_bpm=78.0)  # saved before the block: its one method
    with_every(repo, add(repo, "late.avi", truth=None), 70.0, 70.0, 70.0)  # no truth then: still uncompared
    ev = evaluate_study(repo)
    assert sorted((r.name, r.method, r.estimate_bpm) for r in ev.compared) == [
        ("a.avi", "CHROM", 75.0), ("a.avi", "GREEN", None), ("a.avi", "POS", 70.0),
        ("b.avi", "CHROM", 90.0), ("b.avi", "GREEN", 81.0), ("b.avi", "POS", 82.0), ("old.avi", "POS", 80.0)]
    assert [u.name for u in ev.uncompared] == ["late.avi"]
    pos, chrom, green = ev.figures
    assert (pos.method, pos.recordings, pos.metrics.mae_bpm) == ("POS", 3, pytest.approx(2.0))
    assert (chrom.method, chrom.recordings, chrom.metrics.mae_bpm) == ("CHROM", 2, pytest.approx(6.5))
    assert (green.method, green.recordings, green.without_hr, green.within_5_pct) == ("GREEN", 2, 1, 50.0)
    snr = {(r.name, r.method): r.snr_db for r in ev.compared}
    assert snr["a.avi", "CHROM"] == 7.0 and snr["a.avi", "GREEN"] is None and snr["old.avi", "POS"] > 10
    assert pos.mean_snr_db == pytest.approx((7.0 + 8.0 + snr["old.avi", "POS"]) / 3)
    by_subject = {(f.group, f.method): f.recordings for f in evaluate_study(repo, Grouping.SUBJECT).figures}
    assert by_subject == {("S1", "POS"): 1, ("S1", "CHROM"): 1, ("S1", "GREEN"): 1,
                          (NO_VALUE, "POS"): 2, (NO_VALUE, "CHROM"): 1, (NO_VALUE, "GREEN"): 1}
    rows = list(csv.DictReader(io.StringIO(recordings_csv(ev).decode())))
    assert sorted((r["name"], r["method"], r["error_bpm"]) for r in rows if r["name"] == "b.avi") == [
        ("b.avi", "CHROM", "10.000"), ("b.avi", "GREEN", "1.000"), ("b.avi", "POS", "2.000")]
    assert [f["method"] for f in csv.DictReader(io.StringIO(figures_csv(ev).decode()))] == ["POS", "CHROM", "GREEN"]
