"""What makes a recording doubtful, in plain words: one flag per problem, critical first."""

from __future__ import annotations

import numpy as np

from lib.rppg.frames import RgbTrace
from lib.rppg.results import QualityFlag, Severity
from lib.rppg.spectrum import MIN_ANALYSABLE_S
from lib.rppg.timing import FrameTiming, frame_timing

# Quality thresholds: (warning, critical). The comparisons' direction is in quality_flags.
FACE_FOUND_PCT = (80.0, 50.0)
FPS_MIN = (20.0, 8.0)
FPS_JITTER_PCT = (10.0, 30.0)
DURATION_MIN_S = (10.0, 5.0)
MOTION_BOX_PER_S = (0.15, 0.50)
CLIPPED_PCT = (5.0, 25.0)
SNR_MIN_DB = (0.0, -6.0)


def motion_per_s(trace: RgbTrace, t: np.ndarray | None = None) -> float:
    """How fast the detected face moves, in face widths per second (75th percentile over the recording).

    Speeds are taken between consecutive raw detections (a few per second), so the figure includes the
    detector's own jitter: about 0.05–0.1 for a still synthetic face.
    """
    t = frame_timing(trace.t, trace.nominal_fps).t if t is None else t
    hit = np.flatnonzero(np.isfinite(trace.box_width))
    if len(hit) < 3:
        return 0.0
    dt = np.diff(t[hit])
    moved = np.hypot(*np.diff(trace.box_centre[hit], axis=0).T) / trace.box_width[hit][:-1]
    speed = moved[dt > 0] / dt[dt > 0]
    return float(np.percentile(speed, 75)) if len(speed) else 0.0


def quality_flags(
    trace: RgbTrace,
    *,
    timing: FrameTiming | None = None,
    snr_db: float | None = None,
    lossless: bool | None = None,
    analysed: bool = True,
) -> tuple[QualityFlag, ...]:
    """Everything that makes the recording doubtful, critical first."""
    timing = timing or frame_timing(trace.t, trace.nominal_fps)
    measured_pct = 100.0 * float(trace.measured.mean()) if trace.frames else 0.0
    flags = [
        _below("face_missing", measured_pct, FACE_FOUND_PCT, "%",
               "Skin was found in only {v:.0f}% of frames (want at least {w:.0f}%): check framing, "
               "lighting and that nothing covers the face."),
        _skin_fallback(trace),
        _below("low_fps", timing.fps, FPS_MIN, "fps",
               "The frame rate is {v:.1f} fps (want at least {w:.0f}): too few samples per heartbeat "
               "for a precise pulse."),
        _above("unstable_fps", timing.jitter_pct, FPS_JITTER_PCT, "%",
               "Frame intervals vary by {v:.0f}% (want under {w:.0f}%): the camera dropped frames or ran "
               "at a variable rate."),
        _below("too_short", timing.duration_s, DURATION_MIN_S, "s",
               "The recording is {v:.1f} s long (want at least {w:.0f} s): too few beats for a reliable "
               "heart rate."),
        _above("motion", motion_per_s(trace, timing.t), MOTION_BOX_PER_S, "face widths/s",
               "The face moves {v:.2f} face widths per second (want under {w:.2f}): motion swamps the "
               "tiny colour changes of the pulse."),
        _above("overexposed", 100.0 * _mean(trace.clipped_high), CLIPPED_PCT, "%",
               "{v:.0f}% of skin pixels are blown out white (want under {w:.0f}%): lower exposure or "
               "light; clipped pixels carry no pulse."),
        _above("underexposed", 100.0 * _mean(trace.clipped_low), CLIPPED_PCT, "%",
               "{v:.0f}% of skin pixels are crushed to black (want under {w:.0f}%): add light or "
               "exposure; black pixels carry no pulse."),
    ]
    if lossless is False:
        flags.append(QualityFlag(
            "lossy_codec", Severity.WARNING, None, None,
            "The video is compressed lossily; compression removes much of the faint pulse signal. "
            "Record losslessly (e.g. FFV1 or uncompressed) for research use.",
        ))
    if snr_db is not None:
        flags.append(_below("low_snr", snr_db, SNR_MIN_DB, "dB",
                            "The pulse stands only {v:.1f} dB above the noise (want at least {w:.0f} dB): "
                            "the heart rate may be wrong."))
    elif not analysed:
        flags.append(QualityFlag(
            "no_pulse", Severity.CRITICAL, None, None,
            f"Less than {MIN_ANALYSABLE_S:.0f} s of skin could be measured, so no heart rate is given.",
        ))
    kept = [f for f in flags if f is not None]
    return tuple(sorted(kept, key=lambda f: f.severity is not Severity.CRITICAL))


def _skin_fallback(trace: RgbTrace) -> QualityFlag | None:
    """Said whenever skin pixels stood in for a face in more frames than a face may be missing from."""
    pct = 100.0 * float(trace.skin_found.mean()) if len(trace.skin_found) else 0.0
    limit = 100.0 - FACE_FOUND_PCT[0]
    if pct <= limit:
        return None
    return QualityFlag(
        "no_face_skin_region", Severity.WARNING, pct, limit,
        f"No face was found in {pct:.0f}% of frames, so the pulse there was read from the skin-coloured pixels "
        "of the whole frame: right for a pre-cropped skin video; otherwise check framing and light.", "%")


def _below(code: str, value: float, limits: tuple[float, float], unit: str, text: str) -> QualityFlag | None:
    warn, crit = limits
    if value >= warn:
        return None
    severity = Severity.CRITICAL if value < crit else Severity.WARNING
    return QualityFlag(code, severity, value, warn, text.format(v=value, w=warn), unit)


def _above(code: str, value: float, limits: tuple[float, float], unit: str, text: str) -> QualityFlag | None:
    warn, crit = limits
    if value <= warn:
        return None
    severity = Severity.CRITICAL if value > crit else Severity.WARNING
    return QualityFlag(code, severity, value, warn, text.format(v=value, w=warn), unit)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else 0.0
