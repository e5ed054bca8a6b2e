"""How good a method is across recordings: MAE, RMSE, MAPE, Pearson r, SNR and Bland–Altman agreement.

Definitions follow rPPG-Toolbox's evaluation code (ubicomplab/rPPG-Toolbox, ``evaluation/metrics.py``
``calculate_metrics`` and ``evaluation/post_process.py`` ``_calculate_SNR``), including its standard
errors, so a lab's figures compare with published ones. With ``e = estimate − truth`` over n recordings:

- MAE = mean |e|, standard error std(|e|)/√n
- RMSE = √mean(e²), standard error √(std(e²)/√n) (the toolbox's own form)
- MAPE = 100 · mean |e / truth| %, standard error 100 · std(|e / truth|)/√n
- Pearson r of estimates against truths, standard error √((1 − r²)/(n − 2))
- SNR: the mean over recordings of each pulse's SNR around the *true* heart rate — power within ±6 bpm of
  the true rate and of its first harmonic against the rest of the heart-rate band. The one definition is
  :func:`lib.rppg.spectrum.snr_db`; it is 10·log10 of the power ratio, whereas the toolbox applies
  ``mag2db`` (20·log10) to that power ratio, so the toolbox's dB figures are exactly twice these.

Within 5 bpm: the share of recordings whose estimate lies within ±5 bpm of the truth, a recording without
an estimate counting as a miss (how pyVHR and the rPPG literature report "accuracy").

Bland–Altman (Bland & Altman 1986): bias = mean e, limits of agreement bias ± 1.96 · sd(e), each point
at ((estimate + truth)/2, e).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lib.errors import ValidationError
from lib.rppg.spectrum import snr_db

LOA_Z = 1.96
"""Limits of agreement: 95% of differences under a normal distribution."""
WITHIN_BPM = 5.0
"""An estimate this close to the truth (inclusive) counts as a hit in :func:`within_pct`."""


@dataclass(frozen=True)
class Metrics:
    """Agreement of heart-rate estimates with the truth over ``n`` recordings; ``*_se`` are standard errors."""

    n: int
    mae_bpm: float
    mae_se: float
    rmse_bpm: float
    rmse_se: float
    mape_pct: float
    mape_se: float
    pearson_r: float | None  # None below three recordings or when either side does not vary
    pearson_se: float | None
    snr_db: float | None  # mean per-recording SNR around the true rate; None when no pulses were given
    snr_se: float | None


@dataclass(frozen=True)
class BlandAltman:
    bias_bpm: float
    sd_bpm: float
    lower_loa_bpm: float
    upper_loa_bpm: float
    means: tuple[float, ...]  # (estimate + truth) / 2, one per recording
    differences: tuple[float, ...]  # estimate − truth


def metrics(
    estimates: Sequence[float], truths: Sequence[float], snrs: Sequence[float] | None = None
) -> Metrics:
    """The toolbox's figures for paired heart rates (bpm); ``snrs`` are per-recording SNRs in dB."""
    est, ref = _pairs(estimates, truths)
    n = len(est)
    e = est - ref
    abs_e, sq_e, rel_e = np.abs(e), e**2, np.abs(e / ref)
    r, r_se = _pearson(est, ref)
    snr_mean = snr_se = None
    if snrs is not None and len(snrs):
        s = np.asarray(snrs, dtype=np.float64)
        snr_mean, snr_se = float(s.mean()), float(s.std() / math.sqrt(len(s)))
    return Metrics(
        n=n,
        mae_bpm=float(abs_e.mean()),
        mae_se=float(abs_e.std() / math.sqrt(n)),
        rmse_bpm=float(math.sqrt(sq_e.mean())),
        rmse_se=float(math.sqrt(sq_e.std() / math.sqrt(n))),
        mape_pct=float(100.0 * rel_e.mean()),
        mape_se=float(100.0 * rel_e.std() / math.sqrt(n)),
        pearson_r=r,
        pearson_se=r_se,
        snr_db=snr_mean,
        snr_se=snr_se,
    )


def bland_altman(estimates: Sequence[float], truths: Sequence[float]) -> BlandAltman:
    est, ref = _pairs(estimates, truths)
    diff = est - ref
    bias = float(diff.mean())
    sd = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    return BlandAltman(bias, sd, bias - LOA_Z * sd, bias + LOA_Z * sd,
                       tuple(float(v) for v in (est + ref) / 2.0), tuple(float(v) for v in diff))


def within_pct(estimates: Sequence[float | None], truths: Sequence[float], bpm: float = WITHIN_BPM) -> float:
    """Percentage of recordings estimated within ``bpm`` of the truth; no estimate is a miss."""
    if len(estimates) != len(truths) or not truths:
        raise ValidationError("Estimates and ground truths must come in pairs, one of each per recording.")
    hits = [e is not None and abs(e - t) <= bpm for e, t in zip(estimates, truths, strict=True)]
    return 100.0 * sum(hits) / len(hits)


def pulse_snr_db(pulse: np.ndarray, fs: float, true_hr_bpm: float, band: tuple[float, float]) -> float:
    """SNR of an estimated pulse around the true heart rate (the toolbox's per-video SNR): a periodogram
    zero-padded to the next power of two, then :func:`lib.rppg.spectrum.snr_db`."""
    x = np.asarray(pulse, dtype=np.float64)
    nfft = 1 << max(0, math.ceil(math.log2(max(1, len(x)))))
    freqs = np.fft.rfftfreq(nfft, 1.0 / fs)
    power = np.abs(np.fft.rfft(x, nfft)) ** 2
    return snr_db(freqs, power, true_hr_bpm / 60.0, band)


def _pairs(estimates: Sequence[float], truths: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    est = np.asarray(estimates, dtype=np.float64)
    ref = np.asarray(truths, dtype=np.float64)
    if est.shape != ref.shape or est.ndim != 1:
        raise ValidationError("Estimates and ground truths must come in pairs, one of each per recording.")
    if len(est) == 0:
        raise ValidationError("No recording has both an estimate and a ground truth to compare.")
    if not (np.all(np.isfinite(est)) and np.all(np.isfinite(ref)) and np.all(ref > 0)):
        raise ValidationError("Heart rates to compare must be finite, and true heart rates positive.")
    return est, ref


def _pearson(est: np.ndarray, ref: np.ndarray) -> tuple[float | None, float | None]:
    if len(est) < 3 or est.std() == 0 or ref.std() == 0:
        return None, None
    r = float(np.corrcoef(est, ref)[0, 1])
    return r, float(math.sqrt((1.0 - r**2) / (len(est) - 2)))
