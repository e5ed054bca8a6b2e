"""The result of a quick look: quality flags and the summary stored in a record's ``analysis`` JSON column."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from lib.errors import AnalysisError

GROUND_TRUTH_SYNC = "ground_truth_sync"
"""The flag raised when a reference and its video disagree in length."""


class Severity(StrEnum):
    """How much a quality flag undermines the heart rate: worth a look, or not to be trusted."""

    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class QualityFlag:
    """One reason to doubt a recording; ``message`` is for the researcher, the rest for tables/filters."""

    code: str
    severity: Severity
    value: float | None
    threshold: float | None
    message: str
    unit: str = ""


@dataclass(frozen=True)
class MethodEstimate:
    """One pulse method's heart rate from the same colour trace as the headline estimate, so a recording is
    compared method by method without decoding it again."""

    method: str
    hr_bpm: float | None
    snr_db: float | None  # around the method's own peak, as the headline's
    truth_snr_db: float | None = None  # its pulse around the TRUE rate (rPPG-Toolbox's SNR); None without a truth

    def to_json(self) -> dict[str, float | None]:
        return {"hr_bpm": _round(self.hr_bpm, 2), "snr_db": _round(self.snr_db, 2),
                "truth_snr_db": _round(self.truth_snr_db, 2)}

    @classmethod
    def from_json(cls, method: str, data: dict[str, Any]) -> MethodEstimate:
        return cls(str(method), _opt_float(data.get("hr_bpm")), _opt_float(data.get("snr_db")),
                   _opt_float(data.get("truth_snr_db")))


@dataclass(frozen=True)
class AnalysisSummary:
    """The quick-look result for one recording, as stored in the ``analysis`` JSON column."""

    method: str
    hr_bpm: float | None
    snr_db: float | None
    hr_track: tuple[tuple[float, float], ...]  # (seconds from start, bpm), one per window
    pulse: tuple[float, ...]  # the pulse wave, unit variance, downsampled for plotting
    pulse_fs: float  # samples per second of ``pulse``
    flags: tuple[QualityFlag, ...]
    frames_analysed: int
    seconds_taken: float
    ground_truth_hr_bpm: float | None = None
    hr_error_bpm: float | None = None  # hr_bpm - ground_truth_hr_bpm (signed)
    fps: float | None = None
    duration_s: float | None = None
    # Every method's estimate from the same trace, the headline's included; () in analyses saved before
    # they were kept, which then compare with their one method only.
    methods: tuple[MethodEstimate, ...] = ()

    @property
    def critical_flags(self) -> tuple[QualityFlag, ...]:
        """The flags that say the heart rate is not to be trusted at all."""
        return tuple(f for f in self.flags if f.severity is Severity.CRITICAL)

    @property
    def compared(self) -> bool:
        """Whether this analysis was compared with a ground truth."""
        return self.ground_truth_hr_bpm is not None

    def without_ground_truth(self) -> AnalysisSummary:
        """The same estimate with its comparison dropped: the ground truth it was made with is gone."""
        return replace(self, ground_truth_hr_bpm=None, hr_error_bpm=None,
                       flags=tuple(f for f in self.flags if f.code != GROUND_TRUTH_SYNC),
                       methods=tuple(replace(m, truth_snr_db=None) for m in self.methods))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "method": self.method,
            "hr_bpm": _round(self.hr_bpm, 2),
            "snr_db": _round(self.snr_db, 2),
            "hr_track": [[round(t, 2), round(bpm, 2)] for t, bpm in self.hr_track],
            "pulse": [round(v, 4) for v in self.pulse],
            "pulse_fs": round(self.pulse_fs, 4),
            "flags": [
                {"code": f.code, "severity": str(f.severity), "value": _round(f.value, 4),
                 "threshold": f.threshold, "message": f.message, "unit": f.unit}
                for f in self.flags
            ],
            "frames_analysed": self.frames_analysed,
            "seconds_taken": round(self.seconds_taken, 3),
            "ground_truth_hr_bpm": _round(self.ground_truth_hr_bpm, 2),
            "hr_error_bpm": _round(self.hr_error_bpm, 2),
            "fps": _round(self.fps, 3),
            "duration_s": _round(self.duration_s, 3),
            "methods": {m.method: m.to_json() for m in self.methods},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnalysisSummary:
        try:
            return cls(
                method=str(data["method"]),
                hr_bpm=_opt_float(data.get("hr_bpm")),
                snr_db=_opt_float(data.get("snr_db")),
                hr_track=tuple((float(t), float(bpm)) for t, bpm in data.get("hr_track", ())),
                pulse=tuple(float(v) for v in data.get("pulse", ())),
                pulse_fs=float(data.get("pulse_fs", 0.0)),
                flags=tuple(
                    QualityFlag(
                        code=str(f["code"]),
                        severity=Severity(f["severity"]),
                        value=_opt_float(f.get("value")),
                        threshold=_opt_float(f.get("threshold")),
                        message=str(f["message"]),
                        unit=str(f.get("unit", "")),
                    )
                    for f in data.get("flags", ())
                ),
                frames_analysed=int(data.get("frames_analysed", 0)),
                seconds_taken=float(data.get("seconds_taken", 0.0)),
                ground_truth_hr_bpm=_opt_float(data.get("ground_truth_hr_bpm")),
                hr_error_bpm=_opt_float(data.get("hr_error_bpm")),
                fps=_opt_float(data.get("fps")),
                duration_s=_opt_float(data.get("duration_s")),
                methods=tuple(MethodEstimate.from_json(name, m) for name, m in (data.get("methods") or {}).items()),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AnalysisError(
                f"The saved pulse analysis is unreadable ({exc}); re-analyse the recording."
            ) from exc


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
