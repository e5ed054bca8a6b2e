"""From a pulse wave to a heart rate: band-pass, Welch spectrum, peak refinement and SNR.

``estimate_hr`` takes the Welch spectrum peak in 0.7–4 Hz (42–240 bpm), zero-padded to a 0.1 bpm grid and
refined by parabolic interpolation, plus an SNR in dB after de Haan & Jeanne 2013: power within ±0.1 Hz
(±6 bpm) of the peak and of its first harmonic, against all other power in 0.7–4 Hz. ``hr_track`` repeats
that on 10 s windows every 1 s for a plot.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal as sps

from lib.errors import AnalysisError

BAND_HZ = (0.7, 4.0)
"""Plausible heart rates: 42–240 bpm."""
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


def bandpass(x: np.ndarray, fs: float, band: tuple[float, float] = BAND_HZ) -> np.ndarray:
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


def estimate_hr(pulse: np.ndarray, fs: float, *, segment_s: float = HR_SEGMENT_S) -> tuple[float, float]:
    """Heart rate (bpm) at the Welch spectral peak in 0.7–4 Hz, and the de Haan SNR (dB) around it."""
    pulse = np.asarray(pulse, dtype=np.float64)
    if len(pulse) < 8 or not np.all(np.isfinite(pulse)):
        raise AnalysisError("Too little signal to estimate a heart rate.")
    freqs, power = _welch(pulse, fs, segment_s)
    return _peak_hr(freqs, power), _snr_db(freqs, power, _peak_hr(freqs, power) / 60.0)


def _peak_hr(freqs: np.ndarray, power: np.ndarray) -> float:
    band = np.flatnonzero((freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1]))
    k = band[np.argmax(power[band])]
    f = freqs[k]
    if band[0] < k < band[-1]:  # parabola through the peak and its neighbours: sub-bin accuracy
        a, b, c = power[k - 1], power[k], power[k + 1]
        denom = a - 2 * b + c
        if denom < 0:
            f += 0.5 * (a - c) / denom * (freqs[1] - freqs[0])
    return float(f * 60.0)


def _snr_db(freqs: np.ndarray, power: np.ndarray, f0: float) -> float:
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    near = (np.abs(freqs - f0) <= SNR_HALF_WIDTH_HZ) | (np.abs(freqs - 2 * f0) <= SNR_HALF_WIDTH_HZ)
    signal_power = float(power[band & near].sum())
    noise_power = float(power[band & ~near].sum())
    if signal_power <= 0:
        return -99.0
    if noise_power <= 0:
        return 99.0
    return 10.0 * math.log10(signal_power / noise_power)


def hr_track(
    pulse: np.ndarray, fs: float, *, window_s: float = TRACK_WINDOW_S, step_s: float = TRACK_STEP_S
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
        out.append(((start + length / 2) / fs, _peak_hr(freqs, power)))
    return tuple(out)
