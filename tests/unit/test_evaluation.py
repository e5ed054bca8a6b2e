"""Evaluation metrics against hand-computed values (rPPG-Toolbox's definitions)."""

from __future__ import annotations

import numpy as np
import pytest

from lib.errors import ValidationError
from lib.rppg.evaluation import bland_altman, metrics, pulse_snr_db, within_pct
from lib.rppg.spectrum import snr_db

EST = [70.0, 80.0, 90.0]
TRUE = [72.0, 78.0, 95.0]  # errors -2, +2, -5


def test_metrics_match_hand_computed_values() -> None:
    m = metrics(EST, TRUE, snrs=[1.0, 2.0, 6.0])
    assert m.n == 3
    assert m.mae_bpm == pytest.approx(3.0)
    assert m.mae_se == pytest.approx(np.sqrt(2.0) / np.sqrt(3.0))  # std of |e| = [2, 2, 5] is √2
    assert m.rmse_bpm == pytest.approx(np.sqrt(11.0))  # (4 + 4 + 25) / 3
    assert m.mape_pct == pytest.approx(100.0 * (2 / 72 + 2 / 78 + 5 / 95) / 3)  # 3.535 %
    assert m.pearson_r == pytest.approx(230.0 / np.sqrt(200.0 * 284.6666667), abs=1e-6)  # 0.96393
    assert m.pearson_se == pytest.approx(np.sqrt(1 - m.pearson_r**2))
    assert m.snr_db == pytest.approx(3.0)
    assert m.snr_se == pytest.approx(np.std([1.0, 2.0, 6.0]) / np.sqrt(3.0))


def test_pearson_needs_three_varying_pairs() -> None:
    assert metrics([70.0, 71.0], [72.0, 73.0]).pearson_r is None
    assert metrics([70.0, 70.0, 70.0], [72.0, 73.0, 74.0]).pearson_r is None
    assert metrics(EST, TRUE).snr_db is None


def test_bland_altman_bias_and_limits() -> None:
    ba = bland_altman(EST, TRUE)
    assert ba.bias_bpm == pytest.approx(-5.0 / 3.0)
    assert ba.sd_bpm == pytest.approx(np.sqrt(37.0 / 3.0))  # squared deviations 1/9 + 121/9 + 100/9, over n - 1
    assert ba.lower_loa_bpm == pytest.approx(-5.0 / 3.0 - 1.96 * np.sqrt(37.0 / 3.0))
    assert ba.upper_loa_bpm == pytest.approx(-5.0 / 3.0 + 1.96 * np.sqrt(37.0 / 3.0))
    assert ba.means == (71.0, 79.0, 92.5) and ba.differences == (-2.0, 2.0, -5.0)


def test_within_counts_a_missing_estimate_as_a_miss_and_the_edge_as_a_hit() -> None:
    assert within_pct([70.0, 83.0, None, 99.0], [72.0, 78.0, 80.0, 90.0]) == 50.0  # -2 and +5 hit
    assert within_pct([70.0], [80.0], bpm=10.0) == 100.0
    with pytest.raises(ValidationError):
        within_pct([], [])


def test_snr_counts_both_harmonics_against_the_rest_of_the_band() -> None:
    freqs = np.arange(0, 126) * 0.04  # 0 .. 5 Hz
    power = np.ones_like(freqs)
    power[np.abs(freqs - 1.0) < 0.09] = 10.0  # 5 bins around 1 Hz
    # Band 0.75-2.5 Hz holds 44 bins (0.76 .. 2.48); 5 + 5 of them are signal, 34 noise.
    assert snr_db(freqs, power, 1.0, (0.75, 2.5)) == pytest.approx(10 * np.log10(55.0 / 34.0))


def test_pulse_snr_is_high_at_the_true_rate_only() -> None:
    fs = 30.0
    t = np.arange(int(30 * fs)) / fs
    rng = np.random.default_rng(1)
    pulse = np.sin(2 * np.pi * 1.2 * t) + 0.3 * rng.standard_normal(len(t))
    assert pulse_snr_db(pulse, fs, 72.0, (0.75, 2.5)) > 5.0
    assert pulse_snr_db(pulse, fs, 110.0, (0.75, 2.5)) < -5.0


@pytest.mark.parametrize(("est", "ref"), [([], []), ([70.0], [70.0, 71.0]), ([70.0], [0.0]), ([np.nan], [70.0])])
def test_bad_pairs_are_refused(est: list[float], ref: list[float]) -> None:
    with pytest.raises(ValidationError):
        metrics(est, ref)
