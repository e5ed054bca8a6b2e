"""The quick look on real recordings (``../shared/data/rppg-real/``): a heart rate for every one, and how close.

The data's heart rates all lie within 65–86 bpm, so even an estimator that knows nothing about the pulse
scores an MAE of about its spread; the shuffled-truth control in ``bench/rppg_real.py`` says how much of
the figure is signal. The issue's goal (MAE ≤ 10 bpm) is a benchmark figure (``real_hr_mae_bpm``),
not a test: it is not met on these crops, whose estimates carry almost no per-subject information.
"""

from __future__ import annotations

import numpy as np
import pytest

from lib import rppg
from tests.support.services import require_real_data

OLD_DEFAULT_MAE_BPM = 30.0
"""What a fixed central region gave with POS before the skin fallback (issue 16): the bar to stay under."""


@pytest.fixture(scope="module")
def results() -> list[tuple[str, float, rppg.AnalysisSummary]]:
    """(video, true HR, summary) with the app's default analysis, for every recording with ground truth."""
    root = require_real_data()
    table = root / "ground_truth" / "India_GT.csv"
    out = []
    for video in sorted((root / "India").glob("*.avi")):
        truth = rppg.load_ground_truth(table, recording=video.name)
        out.append((video.name, truth.hr_bpm, rppg.analyse(video)))
    assert out, f"no recordings under {root}"
    return out


def test_every_real_recording_gets_a_heart_rate(results) -> None:
    missing = [name for name, _, summary in results if summary.hr_bpm is None]
    assert not missing, f"no heart rate for {missing}"


def test_real_error_is_well_under_the_old_default(results) -> None:
    mae = float(np.mean([abs(s.hr_bpm - hr) for _, hr, s in results if s.hr_bpm is not None]))
    assert mae < OLD_DEFAULT_MAE_BPM * 0.67, f"MAE {mae:.1f} bpm"


def test_every_real_estimate_is_flagged_as_doubtful(results) -> None:
    # Their estimates are no closer to the true rates than to rates shuffled among subjects: the quick look
    # must say so on every one rather than show a plausible number without a warning.
    unflagged = [name for name, _, s in results if "low_snr" not in {f.code for f in s.flags}]
    assert not unflagged, f"not flagged low_snr: {unflagged}"

