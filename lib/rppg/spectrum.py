"""From a pulse wave to a heart rate: the heart-rate band, band-pass, Welch spectrum, peak and SNR.

``estimate_hr`` takes the Welch spectrum peak inside the heart-rate band, zero-padded to a 0.1 bpm grid
and refined by parabolic interpolation. A pulse's first harmonic can carry more power than its
fundamental (a sharp systolic upstroke, or noise on the fundamental), so when half the peak's frequency
lies in the band and holds at least ``HARMONIC_RATIO`` of the peak's power, that is taken as the heart rate.
``snr_db`` is the one SNR definition (de Haan & Jeanne 2013, as rPPG-Toolbox's ``_calculate_SNR``): power
within ±0.1 Hz (±6 bpm) of a rate and of its first harmonic against the rest of the band. ``hr_track``
repeats the estimate on 10 s windows every 1 s for a plot.

The band is a setting: 0.75–2.5 Hz (45–150 bpm) for subjects at rest, rPPG-Toolbox's evaluation band, is
the default; 0.7–4 Hz (42–240 bpm) for exercise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import signal as sps

from lib.errors import AnalysisError, ValidationError

Band = tuple[float, float]
"""Heart-rate band in Hz: (lowest, highest)."""

RESTING_BAND_HZ: Band = (0.75, 2.5)
"""Subjects at rest, 45–150 bpm (rPPG-Toolbox's evaluation band): the default."""
EXERCISE_BAND_HZ: Band = (0.7, 4.0)
"""During or after exercise, 42–240 bpm."""
BAND_PRESETS: dict[str, Band] = {"resting": RESTING_BAND_HZ, "exercise": EXERCISE_BAND_HZ}
"""Names a setting may use instead of two numbers."""
BAND_LIMITS_HZ: Band = (0.2, 10.0)
"""A band must lie within these (12–600 bpm): anything outside is a typo, not a heart rate."""
HARMONIC_RATIO = 0.5
"""Half the peak's frequency is the heart rate when it holds at least this share of the peak's power."""
SNR_HALF_WIDTH_HZ = 0.1
"""Half width of the signal bins around the fundamental and first harmonic (±6 bpm, as rPPG-Toolbox)."""
HR_SEGMENT_S = 20.0
"""Welch segment length for the whole-recording HR; shorter recordings use one segment."""
FREQ_STEP_BPM = 0.1
"""Spectral grid after zero padding, before parabolic refinement."""
TRACK_WINDOW_S = 10.0
TRACK_STEP_S = 1.0
MIN_ANALYSABLE_S = 4.0
"""Below this much usable signal, no heart rate is reported at all."""


def check_band(band: Sequence[float] | str) -> Band:
    """A heart-rate band from two numbers (Hz) or a preset name; refused with what is acceptable."""
    if isinstance(band, str):
        text = band.strip().lower()
        if text in BAND_PRESETS:
            return BAND_PRESETS[text]
        band = [part for part in text.replace(",", " ").replace("-", " ").split() if part]
    try:
        low, high = (float(v) for v in band)
    except (TypeError, ValueError):
        raise ValidationError(
            f"A heart-rate band is two frequencies in Hz (e.g. 0.75 2.5) or one of {', '.join(BAND_PRESETS)}; "
            f"got {band!r}."
        ) from None
    if not (BAND_LIMITS_HZ[0] <= low < high <= BAND_LIMITS_HZ[1]):
        raise ValidationError(
            f"The heart-rate band {low:g}–{high:g} Hz must rise from low to high within "
            f"{BAND_LIMITS_HZ[0]:g}–{BAND_LIMITS_HZ[1]:g} Hz (0.75–2.5 Hz is 45–150 bpm)."
        )
    return (low, high)


def bandpass(x: np.ndarray, fs: float, band: Band = RESTING_BAND_HZ) -> np.ndarray:
    low, high = band[0], min(band[1], 0.45 * fs)  # a 10 fps video cannot carry 4 Hz cleanly
    sos = sps.butter(4, [low, high], btype="bandpass", fs=fs, output="sos")
    if len(x) <= 3 * (2 * len(sos) + 1):
        return x - x.mean()
    return sps.sosfiltfilt(sos, x)


def _welch(x: np.ndarray, fs: float, segment_s: float) -> tuple[np.ndarray, np.ndarray]:
    nperseg = max(8, min(len(x), round(segment_s * fs)))
    nfft = max(nperseg, 1 << math.ceil(math.log2(fs * 60.0 / FREQ_STEP_BPM)))
    return sps.welch(x, fs, window="hann", nperseg=nperseg, noverlap=nperseg // 2, nfft=nfft,
                     detrend="constant")


def estimate_hr(
    pulse: np.ndarray, fs: float, *, segment_s: float = HR_SEGMENT_S, band: Band = RESTING_BAND_HZ
) -> tuple[float, float]:
    """Heart rate (bpm) at the Welch spectral peak in ``band`` (harmonic checked), and its SNR (dB)."""
    pulse = np.asarray(pulse, dtype=np.float64)
    if len(pulse) < 8 or not np.all(np.isfinite(pulse)):
        raise AnalysisError("Too little signal to estimate a heart rate.")
    freqs, power = _welch(pulse, fs, segment_s)
    hr = _peak_hr(freqs, power, band)
    return hr, snr_db(freqs, power, hr / 60.0, band)


def _peak_hr(freqs: np.ndarray, power: np.ndarray, band: Band) -> float:
    inside = np.flatnonzero((freqs >= band[0]) & (freqs <= band[1]))
    k = inside[np.argmax(power[inside])]
    if freqs[k] / 2 >= band[0]:
        below = inside[np.abs(freqs[inside] - freqs[k] / 2) <= SNR_HALF_WIDTH_HZ]
        j = below[np.argmax(power[below])]
        if power[j] >= HARMONIC_RATIO * power[k]:
            k = j
    f = freqs[k]
    if inside[0] < k < inside[-1]:  # parabola through the peak and its neighbours: sub-bin accuracy
        a, b, c = power[k - 1], power[k], power[k + 1]
        denom = a - 2 * b + c
        if denom < 0:
            f += 0.5 * (a - c) / denom * (freqs[1] - freqs[0])
    return float(f * 60.0)


def snr_db(freqs: np.ndarray, power: np.ndarray, f0: float, band: Band) -> float:
    """SNR in dB of a spectrum around the rate ``f0`` (Hz): the one definition, for estimates and evaluation.

    Signal: power within ±0.1 Hz of ``f0`` and of ``2·f0``; noise: all other power inside ``band``
    (rPPG-Toolbox ``evaluation/post_process.py`` ``_calculate_SNR``, after de Haan & Jeanne 2013). This is
    10·log10 of that power ratio; the toolbox applies ``mag2db`` (20·log10) to it, so its dB are twice these.
    """
    inside = (freqs >= band[0]) & (freqs <= band[1])
    near = (np.abs(freqs - f0) <= SNR_HALF_WIDTH_HZ) | (np.abs(freqs - 2 * f0) <= SNR_HALF_WIDTH_HZ)
    signal_power = float(power[near].sum())
    noise_power = float(power[inside & ~near].sum())
    if signal_power <= 0:
        return -99.0
    if noise_power <= 0:
        return 99.0
    return 10.0 * math.log10(signal_power / noise_power)


def hr_track(
    pulse: np.ndarray, fs: float, *, window_s: float = TRACK_WINDOW_S, step_s: float = TRACK_STEP_S,
    band: Band = RESTING_BAND_HZ,
) -> tuple[tuple[float, float], ...]:
    """(window centre in seconds from the signal's start, bpm) on sliding windows."""
    n = len(pulse)
    length = min(n, round(window_s * fs))
    step = max(1, round(step_s * fs))
    if length < 8:
        return ()
    out = []
    for start in range(0, n - length + 1, step):
        freqs, power = _welch(pulse[start : start + length], fs, window_s)
        out.append(((start + length / 2) / fs, _peak_hr(freqs, power, band)))
    return tuple(out)
