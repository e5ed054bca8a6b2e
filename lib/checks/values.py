"""One check as picklable values: what to do (:class:`CheckTask`, :class:`AnalysisTask`) and how it ended
(:class:`CheckOutcome`).

Light on purpose (no OpenCV, no SciPy): the web process builds tasks and reads
outcomes without loading what only a check needs (:mod:`lib.checks.run`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from lib.keys import extension_of
from lib.transfer import SignedDownload

if TYPE_CHECKING:
    from lib.pipeline.check import PreparedRecording
    from lib.rppg import AnalysisSummary
    from lib.rppg.ground_truth import GroundTruth

UNEXPECTED_CHECK = "The check failed unexpectedly; the server log has the details. Check again, or discard the file."
"""What a researcher reads when a check broke on something that is no PulseVault error (a bug)."""


class Verdict(StrEnum):
    PASSED = "passed"
    """Checked: the prepared recording is ready to store."""
    REFUSED = "refused"
    """The file itself cannot be accepted (not a video, too large, ...)."""
    FAILED = "failed"
    """The check could not run or finish (disk full, storage down, cancelled, its worker died): check again."""


@dataclass(frozen=True)
class CheckTask:
    """Check one recording: a local file (``path``) or an original in the bucket (``source``).

    A check needs no repository, no store and no secret. Everything it writes goes into ``workdir``
    (a bucket original is fetched there first), so cancelling it or losing its worker removes
    exactly that folder.
    """

    name: str
    """The name the researcher's system gave the file (it names the file in every message)."""
    workdir: Path
    max_bytes: int
    path: Path | None = None
    source: SignedDownload | None = None
    analyse: bool = True
    band: tuple[float, float] | None = None
    """The quick look's heart-rate band in Hz (None: at rest)."""

    def __post_init__(self) -> None:
        if (self.path is None) == (self.source is None):
            raise ValueError("a check task needs exactly one of path and source")

    @property
    def fetched_path(self) -> Path:
        """Where a bucket original is fetched to."""
        return self.workdir / f"original.{extension_of(self.name) or 'bin'}"


@dataclass(frozen=True)
class AnalysisTask:
    """Run the quick look again on a stored recording (My files' Re-analyse), fetched through signed links.

    Like a check it holds no secret: the web process signed the links, and saves the result itself.
    """

    name: str
    workdir: Path
    source: SignedDownload
    method: str
    lossless: bool | None = None
    ground_truth: GroundTruth | None = None
    """Parsed by the web process (a small file; a bad one is refused before anything runs)."""
    band: tuple[float, float] | None = None

    @property
    def fetched_path(self) -> Path:
        return self.workdir / f"original.{extension_of(self.name) or 'bin'}"


Task = CheckTask | AnalysisTask
"""Anything the check workers run."""


@dataclass(frozen=True)
class CheckOutcome:
    verdict: Verdict
    prepared: PreparedRecording | None = None
    """What a passed check made (a :class:`CheckTask`)."""
    analysis: AnalysisSummary | None = None
    """What a passed re-analysis found (an :class:`AnalysisTask`)."""
    message: str | None = None
    """Why it was refused or failed (safe to show)."""

    @classmethod
    def failed(cls, message: str) -> CheckOutcome:
        return cls(Verdict.FAILED, message=message)
