"""The whole quick look: decode once, pick the usable span, extract the pulse, estimate, flag, summarise.

Every method (POS, CHROM, GREEN) runs on the one colour trace, so each analysis carries all their heart
rates (``AnalysisSummary.methods``) for the study evaluation at the cost of a few filters, not another
decode; the chosen method stays the headline (``hr_bpm``, the track and the saved pulse)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from lib.media.codecs import lossless_from_fourcc
from lib.rppg.evaluation import pulse_snr_db
from lib.rppg.face import Box
from lib.rppg.frames import ProgressFn, RgbTrace, extract_rgb
from lib.rppg.ground_truth import SYNC_TOLERANCE_S, GroundTruth, check_sync, load_ground_truth
from lib.rppg.ground_truth.reference import ground_truth_hr
from lib.rppg.methods import METHODS, check_method
from lib.rppg.methods.pulse import pulse_signal
from lib.rppg.quality import quality_flags
from lib.rppg.results import GROUND_TRUTH_SYNC, AnalysisSummary, MethodEstimate, QualityFlag, Severity
from lib.rppg.spectrum import RESTING_BAND_HZ, Band, check_band, estimate_hr, hr_track
from lib.rppg.timing import FrameTiming, frame_timing, usable_span


def analyse(
    path: Path | str,
    *,
    method: str = "POS",
    progress: ProgressFn | None = None,
    lossless: bool | None = None,
    ground_truth: Path | str | GroundTruth | None = None,
    roi: Box | None = None,
    band: Band | None = None,
) -> AnalysisSummary:
    """Analyse one recording. ``lossless=None`` guesses from the codec tag; ``roi`` skips face detection;
    ``band`` is the heart-rate band in Hz (None: at rest, 0.75–2.5 Hz). ``ground_truth`` is a file (a
    table of mean heart rates is looked up by this video's name) or a reference already loaded."""
    started = time.perf_counter()
    method = check_method(method)
    band = RESTING_BAND_HZ if band is None else check_band(band)
    truth = ground_truth if isinstance(ground_truth, GroundTruth) or ground_truth is None else (
        load_ground_truth(ground_truth, recording=Path(path).name))  # fail before decoding
    trace = extract_rgb(path, roi=roi, progress=_scaled(progress, 0.97))
    if lossless is None:
        lossless = lossless_from_fourcc(trace.fourcc)
    summary = summarise(trace, method=method, lossless=lossless, ground_truth=truth, started=started, band=band)
    if progress is not None:
        progress(1.0)
    return summary


def summarise(
    trace: RgbTrace,
    *,
    method: str = "POS",
    lossless: bool | None = None,
    ground_truth: GroundTruth | None = None,
    started: float | None = None,
    band: Band = RESTING_BAND_HZ,
) -> AnalysisSummary:
    """Everything after decoding: usable from a script on a trace made any other way."""
    started = time.perf_counter() if started is None else started
    method = check_method(method)
    band = check_band(band)
    timing = frame_timing(trace.t, trace.nominal_fps)
    t, rgb = usable_span(trace, timing)
    span = (float(t[0]), float(t[-1])) if t is not None else (0.0, timing.duration_s)
    gt_hr, sync_flag = _reference(ground_truth, timing, span, band)
    pulses = {name: pulse_signal(rgb, timing.fps, name, band) for name in METHODS} if rgb is not None else {}
    estimates = _method_estimates(pulses, timing.fps, band, gt_hr)
    headline = next(e for e in estimates if e.method == method)
    pulse = pulses.get(method, np.zeros(0))
    track: tuple[tuple[float, float], ...] = ()
    if t is not None:
        track = tuple((float(t[0] + mid), bpm) for mid, bpm in hr_track(pulse, timing.fps, band=band))
    flags = quality_flags(trace, timing=timing, snr_db=headline.snr_db, lossless=lossless, analysed=t is not None)
    flags += (sync_flag,) if sync_flag is not None else ()
    plot, plot_fs = _for_plot(pulse, timing.fps)
    hr = headline.hr_bpm
    return AnalysisSummary(
        method=method,
        hr_bpm=hr,
        snr_db=headline.snr_db,
        hr_track=track,
        pulse=plot,
        pulse_fs=plot_fs,
        flags=flags,
        frames_analysed=trace.frames,
        seconds_taken=time.perf_counter() - started,
        ground_truth_hr_bpm=gt_hr,
        hr_error_bpm=None if hr is None or gt_hr is None else hr - gt_hr,
        fps=timing.fps,
        duration_s=timing.duration_s,
        methods=estimates,
    )


def _method_estimates(
    pulses: dict[str, np.ndarray], fs: float, band: Band, truth_hr: float | None
) -> tuple[MethodEstimate, ...]:
    """Each method's heart rate and SNR, in ``METHODS`` order; no estimate for any without a usable span.
    The SNR around the truth is rPPG-Toolbox's, over its resting band whatever the analysis band."""
    estimates = []
    for name in METHODS:
        pulse = pulses.get(name)
        if pulse is None:
            estimates.append(MethodEstimate(name, None, None))
            continue
        hr, snr = estimate_hr(pulse, fs, band=band)
        truth_snr = None if truth_hr is None else pulse_snr_db(pulse, fs, truth_hr, RESTING_BAND_HZ)
        estimates.append(MethodEstimate(name, hr, snr, truth_snr))
    return tuple(estimates)


def _reference(
    truth: GroundTruth | None, timing: FrameTiming, span: tuple[float, float], band: Band
) -> tuple[float | None, QualityFlag | None]:
    """The reference heart rate over the estimate's span, and a flag when the reference and the video
    disagree in length by more than a second (shown, not corrected: the offset is the file's or zero)."""
    if truth is None:
        return None, None
    truth = truth.on_video(timing.duration_s)
    sync = check_sync(truth, timing.duration_s)
    flag = None
    if sync.warning is not None:
        flag = QualityFlag(GROUND_TRUTH_SYNC, Severity.WARNING, sync.mismatch_s, SYNC_TOLERANCE_S,
                           sync.warning, "s")
    return ground_truth_hr(truth, start_s=span[0], end_s=span[1], band=band), flag


def _for_plot(pulse: np.ndarray, fs: float, target_fs: float = 15.0, max_points: int = 6000) -> tuple:
    """The band-limited pulse thinned for a chart (it holds nothing above 4 Hz, so slicing is safe)."""
    if len(pulse) == 0:
        return (), 0.0
    step = max(1, int(fs // target_fs), math.ceil(len(pulse) / max_points))
    thinned = pulse[::step]
    sd = thinned.std()
    thinned = thinned / sd if sd > 0 else thinned
    return tuple(float(v) for v in thinned), fs / step


def _scaled(progress: ProgressFn | None, share: float) -> ProgressFn | None:
    if progress is None:
        return None
    return lambda fraction: progress(share * fraction)
