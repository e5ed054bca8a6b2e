"""Does the ground truth cover the video? Durations, the offset used, and a warning when they disagree.

Public datasets are known to ship signals a few seconds longer or shorter than their videos; that is
shown, not fixed. A signal that covers less than half of the video is the file of another recording.
"""

from __future__ import annotations

from dataclasses import dataclass

from lib.rppg.ground_truth.model import GroundTruth, Kind, bad

SYNC_TOLERANCE_S = 1.0
"""Video and signal durations that differ by more than this are shown with a warning."""
MIN_COVERED_FRACTION = 0.5
"""Less of the video than this covered by the signal: the file belongs to another recording."""


@dataclass(frozen=True)
class Sync:
    """How a waveform lines up with its video (seconds); ``signal_s`` is None for a mean heart rate."""

    video_s: float
    signal_s: float | None
    offset_s: float  # the signal's first sample, from the video's first frame
    offset_from_file: bool  # False: assumed 0, the signal taken to start with the video
    covered_s: float  # how much of the video the signal overlaps

    @property
    def mismatch_s(self) -> float:
        return 0.0 if self.signal_s is None else abs(self.signal_s - self.video_s)

    @property
    def warning(self) -> str | None:
        if self.signal_s is None or self.mismatch_s <= SYNC_TOLERANCE_S:
            return None
        how = "from the file" if self.offset_from_file else "assumed: the signal starts with the video"
        return (f"The video lasts {self.video_s:.1f} s but the ground truth {self.signal_s:.1f} s (offset "
                f"{self.offset_s:+.2f} s, {how}); check that they were recorded together and are in sync.")


def check_sync(truth: GroundTruth, video_s: float) -> Sync:
    """Compare a reference with its video; refuse one that covers too little of it."""
    truth = truth.on_video(video_s)
    if truth.kind is Kind.MEAN_HR:
        return Sync(video_s, None, 0.0, False, video_s)
    signal_s = truth.duration_s or 0.0
    start = truth.start_s
    covered = max(0.0, min(video_s, start + signal_s) - max(0.0, start))
    if video_s > 0 and covered < MIN_COVERED_FRACTION * video_s:
        raise bad(truth.source, f"covers {covered:.1f} s of this {video_s:.1f} s recording (the signal lasts "
                                f"{signal_s:.1f} s from {start:+.1f} s); it looks like the file of another "
                                "recording")
    return Sync(video_s, signal_s, start, truth.offset_from_file, covered)
