"""Every method's estimate from one colour trace (``AnalysisSummary.methods``): each finds a known pulse, the
chosen method stays the headline, the SNR around the truth tells a right pulse from a wrong one, and analyses
saved before the block still load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lib import rppg
from lib.errors import AnalysisError
from lib.rppg.ground_truth.model import mean_hr

FPS = 30.0
HR_BPM = 78.0


def skin_trace(hr_bpm: float = HR_BPM, seconds: float = 30.0, seed: int = 3) -> rppg.RgbTrace:
    """Skin whose colour beats at ``hr_bpm`` (the blood-volume signature: green strongest) under sensor noise and
    a slow brightness drift that the chrominance methods cancel and the band-pass removes for GREEN."""
    t = np.arange(int(seconds * FPS)) / FPS
    rng = np.random.default_rng(seed)
    beat = np.sin(2 * np.pi * hr_bpm / 60.0 * t)
    signature = np.array([0.33, 0.77, 0.53]) * 0.01  # R, G, B
    drift = 1.0 + 0.02 * np.sin(2 * np.pi * 0.05 * t)
    rgb = np.array([190.0, 145.0, 110.0]) * (1 - np.outer(beat, signature)) * drift[:, None]
    rgb += rng.normal(0.0, 0.15, rgb.shape)
    n = len(t)
    return rppg.RgbTrace(t=t, rgb=rgb, face_found=np.ones(n, bool), box_centre=np.full((n, 2), 50.0),
                         box_width=np.full(n, 40.0), clipped_low=np.zeros(n // 5), clipped_high=np.zeros(n // 5),
                         nominal_fps=FPS)


def by_method(summary: rppg.AnalysisSummary) -> dict[str, object]:
    return {m.method: m for m in summary.methods}


def test_each_method_finds_the_known_pulse_from_the_one_trace() -> None:
    summary = rppg.summarise(skin_trace(), method="CHROM")
    assert tuple(m.method for m in summary.methods) == rppg.METHODS
    for estimate in summary.methods:
        assert estimate.hr_bpm == pytest.approx(HR_BPM, abs=1.5), estimate
        assert estimate.snr_db is not None and estimate.snr_db > 3.0, estimate
        assert estimate.truth_snr_db is None  # no ground truth given
    chrom = by_method(summary)["CHROM"]
    assert (summary.hr_bpm, summary.snr_db) == (chrom.hr_bpm, chrom.snr_db)  # the headline is the chosen one


def test_the_chosen_method_changes_the_headline_not_the_block() -> None:
    trace = skin_trace(seed=5)
    pos, green = rppg.summarise(trace, method="POS"), rppg.summarise(trace, method="GREEN")
    assert pos.methods == green.methods
    assert pos.hr_bpm == by_method(pos)["POS"].hr_bpm and green.hr_bpm == by_method(green)["GREEN"].hr_bpm
    assert pos.pulse != green.pulse  # the saved pulse is the headline method's


def test_snr_around_the_truth_separates_a_right_truth_from_a_wrong_one() -> None:
    trace = skin_trace()
    right = rppg.summarise(trace, ground_truth=mean_hr("gt.txt", "mean_hr", HR_BPM))
    wrong = rppg.summarise(trace, ground_truth=mean_hr("gt.txt", "mean_hr", 115.0))
    for name in rppg.METHODS:
        assert by_method(right)[name].truth_snr_db > 3.0
        assert by_method(wrong)[name].truth_snr_db < -3.0
    dropped = right.without_ground_truth()
    assert all(m.truth_snr_db is None for m in dropped.methods)
    assert [m.hr_bpm for m in dropped.methods] == [m.hr_bpm for m in right.methods]


def test_a_trace_too_short_to_analyse_gives_every_method_no_estimate() -> None:
    summary = rppg.summarise(skin_trace(seconds=2.0))
    assert summary.hr_bpm is None
    assert [(m.method, m.hr_bpm, m.snr_db) for m in summary.methods] == [(n, None, None) for n in rppg.METHODS]


def test_the_block_round_trips_and_an_analysis_saved_before_it_still_loads() -> None:
    summary = rppg.summarise(skin_trace(), ground_truth=mean_hr("gt.txt", "mean_hr", HR_BPM))
    data = json.loads(json.dumps(summary.to_json()))
    assert set(data["methods"]) == set(rppg.METHODS)
    again = rppg.AnalysisSummary.from_json(data)
    assert again.to_json() == data
    assert [m.method for m in again.methods] == list(rppg.METHODS)
    del data["methods"]  # as every analysis saved before the block
    old = rppg.AnalysisSummary.from_json(data)
    assert old.methods == () and old.hr_bpm == again.hr_bpm and old.ground_truth_hr_bpm == again.ground_truth_hr_bpm
    with pytest.raises(AnalysisError):
        rppg.AnalysisSummary.from_json({**data, "methods": [70.0]})  # not a mapping of methods: unreadable
