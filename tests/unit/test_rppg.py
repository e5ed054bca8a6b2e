"""lib/rppg on generated face clips with a known pulse (tests/support/synthetic_pulse.py).

Clips are small (160x120, 12 s) so the module stays well under a minute. The Haar cascade fires on the
synthetic face for the skin tones used here; a few tests also give the skin box directly (``roi=``) to
check the estimator without the detector.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from lib import rppg
from lib.errors import AnalysisError, NotFound, ValidationError
from lib.media import codecs
from lib.rppg import quality, spectrum
from lib.rppg.methods import pulse
from lib.rppg.timing import frame_timing
from tests.support.synthetic_pulse import (
    ClipSpec,
    make_clip,
    write_ground_truth_csv,
    write_ubfc_ground_truth,
)

SMALL = (160, 120)


def spec(**changes: object) -> ClipSpec:
    base = {"seconds": 12.0, "size": SMALL, "codec": "FFV1"}
    return ClipSpec(**{**base, **changes})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory):
    """Clip factory with a per-module cache, so tests that share a clip render it once."""
    folder = tmp_path_factory.mktemp("rppg")
    made: dict[ClipSpec, object] = {}

    def get(clip_spec: ClipSpec):
        if clip_spec not in made:
            made[clip_spec] = make_clip(folder / f"clip{len(made)}", clip_spec)
        return made[clip_spec]

    return get


def codes(summary: rppg.AnalysisSummary) -> dict[str, rppg.QualityFlag]:
    return {flag.code: flag for flag in summary.flags}


# --- accuracy -------------------------------------------------------------------------------------------


EXERCISE = spectrum.EXERCISE_BAND_HZ


@pytest.mark.parametrize("hr", [45.0, 58.0, 75.0, 96.0, 123.0, 150.0, 180.0])
def test_hr_within_3_bpm_on_clean_clips(clips, hr: float) -> None:
    clip = clips(spec(hr_bpm=hr, seed=int(hr)))
    summary = rppg.analyse(clip.path, band=EXERCISE)
    assert summary.hr_bpm == pytest.approx(hr, abs=3.0)
    assert summary.snr_db is not None and summary.snr_db > quality.SNR_MIN_DB[0]
    assert not codes(summary), summary.flags


@pytest.mark.parametrize("hr", [52.0, 88.0, 135.0, 172.0])
def test_hr_within_3_bpm_on_moderately_noisy_moving_clips(clips, hr: float) -> None:
    noisy = spec(hr_bpm=hr, noise_sigma=10.0, drift=0.12, motion_px=0.03, pulse_amplitude=0.004,
                 hrv_bpm=2.0, seed=int(hr) + 1)
    summary = rppg.analyse(clips(noisy).path, band=EXERCISE)
    assert summary.hr_bpm == pytest.approx(hr, abs=3.0)


@pytest.mark.parametrize("hr", [52.0, 75.0, 123.0])
def test_resting_band_is_the_default(clips, hr: float) -> None:
    summary = rppg.analyse(clips(spec(hr_bpm=hr, seed=int(hr))).path)
    assert summary.hr_bpm == pytest.approx(hr, abs=3.0)
    fast = rppg.analyse(clips(spec(hr_bpm=180.0, seed=180)).path)
    assert fast.hr_bpm is not None and fast.hr_bpm <= 150.5  # 3 Hz lies outside 0.75-2.5 Hz


def test_a_clip_of_skin_without_a_face_falls_back_to_skin_pixels(clips, tmp_path: Path) -> None:
    """Pre-cropped datasets hold a skin patch and no face: the whole frame's skin pixels are measured."""
    clip = clips(spec(hr_bpm=70.0, seed=70, size=(320, 240)))
    x, y, w, h = clip.skin_roi
    cap = cv2.VideoCapture(str(clip.path))
    cropped = tmp_path / "cheek.avi"
    writer = cv2.VideoWriter(str(cropped), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, (120, 60))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        writer.write(cv2.resize(frame[y : y + h, x : x + w], (120, 60), interpolation=cv2.INTER_AREA))
    cap.release()
    writer.release()
    summary = rppg.analyse(cropped)
    flags = codes(summary)
    assert summary.hr_bpm == pytest.approx(70.0, abs=3.0)
    assert flags["no_face_skin_region"].value == pytest.approx(100.0)
    assert "face_missing" not in flags and "no_pulse" not in flags


def test_given_skin_box_skips_detection(clips) -> None:
    clip = clips(spec(hr_bpm=75.0, seed=75))
    summary = rppg.analyse(clip.path, roi=clip.skin_roi)
    assert summary.hr_bpm == pytest.approx(75.0, abs=3.0)
    trace = rppg.extract_rgb(clip.path, roi=clip.skin_roi)
    assert trace.face_found.all()
    assert trace.rgb.shape == (trace.frames, 3)  # per-frame scalars only
    with pytest.raises(ValidationError):
        rppg.extract_rgb(clip.path, roi=(10, 10, 0, 5))


def test_frames_are_streamed_not_kept(clips) -> None:
    clip = clips(spec(hr_bpm=75.0, seed=75))
    frame_bytes = SMALL[0] * SMALL[1] * 3
    tracemalloc.start()
    try:
        trace = rppg.extract_rgb(clip.path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert trace.frames == 360
    assert peak < 20 * frame_bytes  # keeping the frames would take 360 of them


@pytest.mark.parametrize("method", ["CHROM", "green", "pos", " Chrom "])
def test_other_methods_run_and_names_are_case_insensitive(clips, method: str) -> None:
    summary = rppg.analyse(clips(spec(hr_bpm=96.0, seed=96)).path, method=method)
    assert summary.method == method.strip().upper()
    assert summary.hr_bpm == pytest.approx(96.0, abs=3.0)


def test_unknown_method_names_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="POS, CHROM, GREEN"):
        rppg.analyse(tmp_path / "never-decoded.avi", method="ICA")


def test_summary_carries_track_pulse_and_timing(clips) -> None:
    clip = clips(spec(hr_bpm=75.0, seed=75))
    seen: list[float] = []
    summary = rppg.analyse(clip.path, progress=seen.append)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen) and all(0.0 <= f <= 1.0 for f in seen)
    assert summary.frames_analysed == 360
    assert summary.fps == pytest.approx(30.0, abs=0.01)
    assert summary.duration_s == pytest.approx(12.0, abs=0.1)
    assert summary.seconds_taken > 0
    assert len(summary.hr_track) >= 2
    assert all(bpm == pytest.approx(75.0, abs=4.0) for _, bpm in summary.hr_track)
    assert all(0 < t < 12.0 for t, _ in summary.hr_track)
    assert 10.0 <= summary.pulse_fs <= 30.0
    assert len(summary.pulse) == pytest.approx(12.0 * summary.pulse_fs, abs=summary.pulse_fs)


# --- flags ----------------------------------------------------------------------------------------------


def test_no_face_is_critical_and_gives_no_heart_rate(clips) -> None:
    summary = rppg.analyse(clips(spec(face=False)).path)
    flags = codes(summary)
    assert summary.hr_bpm is None and summary.snr_db is None
    assert flags["face_missing"].severity is rppg.Severity.CRITICAL
    assert flags["face_missing"].value == 0.0
    assert flags["no_pulse"].severity is rppg.Severity.CRITICAL
    assert summary.flags[0].severity is rppg.Severity.CRITICAL  # critical flags come first


def test_ten_fps_is_flagged_low_fps(clips) -> None:
    summary = rppg.analyse(clips(spec(fps=10.0, hr_bpm=70.0, seed=3)).path)
    flag = codes(summary)["low_fps"]
    assert flag.value == pytest.approx(10.0, abs=0.1)
    assert flag.threshold == quality.FPS_MIN[0]
    assert "10.0 fps" in flag.message


def test_heavy_noise_is_flagged_low_snr(clips) -> None:
    summary = rppg.analyse(clips(spec(noise_sigma=30.0, pulse_amplitude=0.0005, seed=4)).path)
    flag = codes(summary)["low_snr"]
    assert flag.value is not None and flag.value < quality.SNR_MIN_DB[0]
    assert flag.unit == "dB"


def test_blown_out_skin_is_flagged_overexposed(clips) -> None:
    flag = codes(rppg.analyse(clips(spec(exposure=1.7, seed=5)).path))["overexposed"]
    assert flag.value is not None and flag.value > quality.CLIPPED_PCT[0]


def test_black_skin_pixels_are_flagged_underexposed(clips) -> None:
    clip = clips(spec(exposure=0.03, seed=6))
    flag = codes(rppg.analyse(clip.path, roi=clip.skin_roi))["underexposed"]  # too dark to detect a face
    assert flag.value is not None and flag.value > quality.CLIPPED_PCT[0]


def test_short_clip_is_flagged_too_short(clips) -> None:
    summary = rppg.analyse(clips(spec(seconds=6.0, hr_bpm=90.0, seed=7)).path)
    flag = codes(summary)["too_short"]
    assert flag.value == pytest.approx(6.0, abs=0.1)
    assert summary.hr_bpm is not None  # still estimated, just doubtful


def test_lossy_codec_from_fourcc_or_caller(clips) -> None:
    lossy = clips(spec(codec="mp4v", seed=8))
    assert "lossy_codec" in codes(rppg.analyse(lossy.path))
    assert "lossy_codec" not in codes(rppg.analyse(lossy.path, lossless=True))
    lossless = clips(spec(hr_bpm=75.0, seed=75))
    assert "lossy_codec" in codes(rppg.analyse(lossless.path, lossless=False))
    assert codecs.lossless_from_fourcc("FFV1") is True
    assert codecs.lossless_from_fourcc("????") is None


def test_head_motion_is_flagged(clips) -> None:
    shaky = spec(motion_px=0.2, motion_hz=0.6, seed=9)
    flag = codes(rppg.analyse(clips(shaky).path))["motion"]
    assert flag.value is not None and flag.value > quality.MOTION_BOX_PER_S[0]


def test_jittery_timestamps_are_flagged_unstable() -> None:
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.choice([1 / 30, 2 / 30], size=600, p=[0.8, 0.2]))
    timing = frame_timing(t, 30.0)
    assert timing.fps == pytest.approx(30.0)
    trace = _trace(t)
    flags = {f.code: f for f in quality.quality_flags(trace, timing=timing)}
    assert flags["unstable_fps"].value == pytest.approx(timing.jitter_pct)
    assert timing.jitter_pct > quality.FPS_JITTER_PCT[0]
    steady = frame_timing(np.arange(600) / 30.0, 30.0)
    assert steady.jitter_pct == pytest.approx(0.0, abs=1e-6)


def test_variable_frame_rate_trace_is_resampled(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.uniform(0.02, 0.05, size=700))
    rgb = _skin_trace(t, hr_bpm=84.0)
    summary = rppg.summarise(_trace(t, rgb))
    assert summary.hr_bpm == pytest.approx(84.0, abs=1.0)
    assert "unstable_fps" in codes(summary)


# --- spectral estimator ---------------------------------------------------------------------------------


def test_estimate_hr_is_sub_bin_accurate_and_snr_separates_pulse_from_noise() -> None:
    fs = 30.0
    t = np.arange(int(15 * fs)) / fs
    rng = np.random.default_rng(2)
    pulse = np.sin(2 * np.pi * 1.2345 * t) + 0.3 * rng.standard_normal(len(t))
    hr, snr = spectrum.estimate_hr(pulse, fs)
    assert hr == pytest.approx(1.2345 * 60, abs=0.3)
    assert snr > 5.0
    _, noise_snr = spectrum.estimate_hr(spectrum.bandpass(rng.standard_normal(len(t)), fs), fs)
    assert noise_snr < quality.SNR_MIN_DB[0]


def test_hr_track_windows() -> None:
    fs = 30.0
    t = np.arange(int(30 * fs)) / fs
    track = spectrum.hr_track(np.sin(2 * np.pi * 1.5 * t), fs)
    assert len(track) == 21  # 10 s windows every 1 s over 30 s
    assert track[0][0] == pytest.approx(5.0) and track[-1][0] == pytest.approx(25.0)
    assert all(bpm == pytest.approx(90.0, abs=0.5) for _, bpm in track)


@pytest.mark.parametrize(("fundamental", "expected_bpm"), [(0.8, 60.0), (0.3, 120.0)])
def test_a_dominant_harmonic_is_read_at_its_fundamental(fundamental: float, expected_bpm: float) -> None:
    """Peak at 2 Hz; 1 Hz holds 0.64 of its power (a harmonic: 60 bpm) or 0.09 (a rate of its own: 120)."""
    fs = 30.0
    t = np.arange(int(30 * fs)) / fs
    pulse = fundamental * np.sin(2 * np.pi * 1.0 * t) + np.sin(2 * np.pi * 2.0 * t)
    hr, _ = spectrum.estimate_hr(pulse, fs)
    assert hr == pytest.approx(expected_bpm, abs=0.5)
    assert spectrum.estimate_hr(pulse, fs, band=(1.5, 4.0))[0] == pytest.approx(120.0, abs=0.5)  # 1 Hz outside


def test_band_setting_accepts_presets_and_pairs() -> None:
    assert spectrum.check_band("resting") == (0.75, 2.5)
    assert spectrum.check_band(" Exercise ") == (0.7, 4.0)
    assert spectrum.check_band("0.8-3") == (0.8, 3.0) == spectrum.check_band([0.8, 3])
    for bad in ("fast", (2.5, 0.75), (0.0, 2.0), (0.75, 40.0), (1.0,)):
        with pytest.raises(ValidationError):
            spectrum.check_band(bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        rppg.analyse("whatever.avi", band=(3.0, 1.0))


def test_pulse_signal_rejects_wrong_shape() -> None:
    with pytest.raises(ValidationError):
        pulse.pulse_signal(np.zeros((100, 2)), 30.0)


# --- ground truth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv_header", "csv_bare", "ubfc"])
def test_ground_truth_files_parse_and_give_reference_hr(clips, tmp_path: Path, kind: str) -> None:
    clip = clips(spec(hr_bpm=75.0, seed=75))
    if kind == "ubfc":
        gt = write_ubfc_ground_truth(clip, tmp_path / "ground_truth.txt")
    else:
        gt = write_ground_truth_csv(clip, tmp_path / "gt.csv", header=kind == "csv_header")
    truth = rppg.load_ground_truth(gt)
    t, values = truth.t, truth.values
    assert len(t) == len(values) == 12 * 60 and truth.fs == pytest.approx(60.0, rel=0.01)
    assert t[0] == pytest.approx(0.0) and np.all(np.diff(t) > 0)
    summary = rppg.analyse(clip.path, ground_truth=gt)
    assert summary.ground_truth_hr_bpm == pytest.approx(75.0, abs=1.0)
    assert summary.hr_error_bpm == pytest.approx(summary.hr_bpm - summary.ground_truth_hr_bpm)
    assert abs(summary.hr_error_bpm) < 3.0


def test_ground_truth_in_milliseconds_and_other_delimiters(tmp_path: Path) -> None:
    rows = "\n".join(f"{i * 1000 / 64:.3f};{np.sin(i / 10):.4f}" for i in range(640))
    path = tmp_path / "gt.csv"
    path.write_text("timestamp_ms;ppg\n" + rows + "\n")
    t = rppg.load_ground_truth(path).t
    assert t[-1] == pytest.approx(639 / 64, abs=1e-3)
    path.write_text(rows.replace(";", "\t") + "\n")  # no header: milliseconds inferred from the spacing
    t = rppg.load_ground_truth(path).t
    assert t[-1] == pytest.approx(639 / 64, abs=1e-3)


def test_bad_ground_truth_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "gt.csv"
    path.write_text("time,value\n0,1\nzero,two\n")
    with pytest.raises(ValidationError):
        rppg.load_ground_truth(path)
    path.write_text("1.0\n2.0\n")
    with pytest.raises(ValidationError):
        rppg.load_ground_truth(path)
    with pytest.raises(NotFound):
        rppg.load_ground_truth(tmp_path / "missing.csv")


# --- files and JSON -------------------------------------------------------------------------------------


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        rppg.analyse(tmp_path / "nope.avi")
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(AnalysisError):
        rppg.analyse(junk)


def test_json_round_trip(clips, tmp_path: Path) -> None:
    clip = clips(spec(hr_bpm=75.0, seed=75))
    gt = write_ground_truth_csv(clip, tmp_path / "gt.csv")
    summary = rppg.analyse(clip.path, ground_truth=gt, lossless=False)
    data = json.loads(json.dumps(summary.to_json()))
    again = rppg.AnalysisSummary.from_json(data)
    assert again.to_json() == data
    assert again.hr_bpm == pytest.approx(summary.hr_bpm, abs=0.01)
    assert again.flags[0].severity is rppg.Severity.WARNING and again.flags[0].code == "lossy_codec"
    assert again.ground_truth_hr_bpm == pytest.approx(summary.ground_truth_hr_bpm, abs=0.01)
    assert isinstance(again.hr_track, tuple) and isinstance(again.hr_track[0], tuple)
    with pytest.raises(AnalysisError):
        rppg.AnalysisSummary.from_json({"hr_bpm": 70})


# --- helpers --------------------------------------------------------------------------------------------


def _skin_trace(t: np.ndarray, hr_bpm: float) -> np.ndarray:
    pulse = np.sin(2 * np.pi * hr_bpm / 60.0 * t)
    signature = np.array([0.33, 0.77, 0.53]) * 0.01  # R, G, B
    skin = np.array([190.0, 145.0, 110.0])
    return skin * (1 - np.outer(pulse, signature))


def _trace(t: np.ndarray, rgb: np.ndarray | None = None) -> rppg.RgbTrace:
    n = len(t)
    return rppg.RgbTrace(
        t=t,
        rgb=_skin_trace(t, 70.0) if rgb is None else rgb,
        face_found=np.ones(n, bool),
        box_centre=np.full((n, 2), 50.0),
        box_width=np.full(n, 40.0),
        clipped_low=np.zeros(n // 5),
        clipped_high=np.zeros(n // 5),
        nominal_fps=30.0,
    )


def test_every_method_name_has_an_extractor() -> None:
    assert tuple(pulse.EXTRACTORS) == rppg.METHODS
