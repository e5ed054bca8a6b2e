"""Progress of an upload's steps: what a card's progress bars show.

Callbacks are always called on the caller's thread (lib.transfer guarantees it
for the byte transfers), so a UI may update widgets from them. If a callback
raises, the step is aborted and cleaned up like any failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from lib.units import human_bytes

REPORT_EVERY_S = 0.1
"""Progress updates closer together than this are dropped (a browser cannot show them anyway)."""


class Step(StrEnum):
    DOWNLOAD = "download"
    VALIDATE = "validate"
    PROBE = "probe"
    THUMBNAIL = "thumbnail"
    PREVIEW = "preview"
    CHECKSUM = "checksum"
    DUPLICATES = "duplicates"
    ANALYSE = "analyse"
    RECORD = "record"
    UPLOAD_ORIGINAL = "upload_original"
    UPLOAD_THUMBNAIL = "upload_thumbnail"
    UPLOAD_PREVIEW = "upload_preview"
    VERIFY = "verify"
    READY = "ready"


STEP_LABELS: dict[Step, str] = {
    Step.DOWNLOAD: "Fetching the recording from the bucket",
    Step.VALIDATE: "Checking the file",
    Step.PROBE: "Reading video properties",
    Step.THUMBNAIL: "Making a thumbnail",
    Step.PREVIEW: "Making a browser-playable preview",
    Step.CHECKSUM: "Computing the checksum",
    Step.DUPLICATES: "Looking for duplicates",
    Step.ANALYSE: "Quick-look pulse analysis",
    Step.RECORD: "Recording the upload",
    Step.UPLOAD_ORIGINAL: "Uploading the recording",
    Step.UPLOAD_THUMBNAIL: "Uploading the thumbnail",
    Step.UPLOAD_PREVIEW: "Uploading the preview",
    Step.VERIFY: "Verifying what arrived",
    Step.READY: "Ready",
}


@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` of ``total`` in bytes (``unit="bytes"``) or as a fraction."""

    step: Step
    done: float
    total: float
    unit: str = "fraction"
    rate_bps: float | None = None
    """Bytes per second since the step started (byte steps only)."""

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, max(0.0, self.done / self.total))

    @property
    def label(self) -> str:
        return STEP_LABELS[self.step]

    def describe(self) -> str:
        """``"Uploading the recording: 3.0 MiB of 12.0 MiB · 4.1 MiB/s"`` and the like."""
        if self.unit != "bytes":
            return f"{self.label}: {self.fraction:.0%}"
        text = f"{self.label}: {human_bytes(self.done)} of {human_bytes(self.total)}"
        return text + (f" · {human_bytes(self.rate_bps)}/s" if self.rate_bps else "")


ProgressCallback = Callable[[Progress], None]


class Reporter:
    """Forwards progress to the caller's callback, at most every REPORT_EVERY_S except step changes."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._last_step: Step | None = None
        self._last_time = 0.0

    def step(self, step: Step) -> None:
        """A step begins."""
        self(step, 0.0, 1.0, force=True)

    def done(self, step: Step) -> None:
        """A step without a measure of its own finished (so its bar does not stay at 0%)."""
        self(step, 1.0, 1.0, force=True)

    def __call__(self, step: Step, done: float, total: float, *, unit: str = "fraction",
                 rate_bps: float | None = None, force: bool = False) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        finished = total > 0 and done >= total
        if not (force or finished or step != self._last_step or now - self._last_time >= REPORT_EVERY_S):
            return
        self._last_step, self._last_time = step, now
        self._callback(Progress(step=step, done=done, total=total, unit=unit, rate_bps=rate_bps))

    def bytes(self, step: Step) -> Callable[[int, int], None]:
        """A ``(done, total)`` byte callback reporting ``step`` with the rate since it started."""
        started = time.monotonic()

        def on_bytes(done: int, total: int) -> None:
            elapsed = time.monotonic() - started
            self(step, done, total, unit="bytes", rate_bps=done / elapsed if elapsed > 0 else None)

        return on_bytes
