"""``python -m lib.rppg``: the quick look from a shell, one JSON object per line per file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.synthetic_pulse import ClipSpec, make_clip

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lib.rppg", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = ClipSpec(hr_bpm=72.0, seconds=12.0, size=(160, 120), codec="MJPG", seed=72)
    return make_clip(tmp_path_factory.mktemp("cli") / "face", spec).path


def test_json_lines_per_file_with_the_path_as_given(clip: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / "gone.avi")
    proc = run(str(clip), missing, "--json", "--method", "chrom")
    assert proc.returncode == 1  # one file failed; the other was still analysed
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(clip), missing]
    good, bad = lines
    assert good["method"] == "CHROM" and good["hr_bpm"] == pytest.approx(72.0, abs=3.0)
    assert isinstance(good["snr_db"], float) and "lossy_codec" in good["flags"]
    assert list(good["methods"]) == ["POS", "CHROM", "GREEN"]  # every method from the one decode
    assert good["methods"]["CHROM"] == {"hr_bpm": good["hr_bpm"], "snr_db": good["snr_db"]}
    assert all(m["hr_bpm"] == pytest.approx(72.0, abs=3.0) for m in good["methods"].values()), good["methods"]
    assert bad["hr_bpm"] is None and "not there" in bad["error"] and "Traceback" not in proc.stderr


def test_band_and_readable_output(clip: Path) -> None:
    proc = run(str(clip), "--band", "0.7", "4")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{clip}: ") and "bpm (POS, SNR" in proc.stdout and "lossy_codec" in proc.stdout
    assert "); CHROM " in proc.stdout and "; GREEN " in proc.stdout  # the other methods, from the same decode
    bad = run(str(clip), "--band", "3", "1")
    assert bad.returncode == 2 and "must rise from low to high" in bad.stderr and "Traceback" not in bad.stderr
