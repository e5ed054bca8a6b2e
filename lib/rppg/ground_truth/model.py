"""The one value every ground-truth format parses to, and the checks every format shares.

A reference is either a pulse waveform (samples with their times, the sampling rate and the start offset
explicit) or one mean heart rate for the whole recording. Times are seconds from the video's first frame:
a loader that knows when the signal started relative to the video (PURE's image timestamps, BIDS'
``StartTime``) says so in ``start_s`` and ``offset_from_file``; otherwise the signal is taken to start
with the video, which is what the datasets' own loaders (rPPG-Toolbox, pyVHR) assume.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from lib.errors import GroundTruthError

MIN_SAMPLES = 10
"""A waveform shorter than this is no reference for a heart rate."""
EPOCH_AFTER_S = 1e5
"""Timestamps beyond this many seconds (27 h) are absolute clock times: they are made relative to the first."""
MAX_SAMPLE_STEP_S = 0.5
"""No pulse oximeter logs below 2 Hz, so a median step longer than this means the times are milliseconds."""


class Kind(StrEnum):
    WAVEFORM = "waveform"
    MEAN_HR = "mean_hr"


@dataclass(frozen=True)
class GroundTruth:
    """A reference for one recording, from one file.

    ``source`` is the file name (for messages); ``format`` the layout it was read as. For a waveform,
    ``t`` holds the sample times in seconds from the video's first frame (``start_s`` is ``t[0]``) and
    ``fs`` the sampling rate in Hz; ``fs`` is None only when the file gives no rate and the samples are
    taken to span the video evenly (iBVP), which :meth:`on_video` resolves. For a mean heart rate,
    ``hr_bpm`` is set and the arrays are empty.
    """

    source: str
    format: str
    kind: Kind
    t: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    values: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    fs: float | None = None
    start_s: float = 0.0
    offset_from_file: bool = False
    hr_bpm: float | None = None

    @property
    def duration_s(self) -> float | None:
        """How long the waveform lasts (one sample period included); None for a mean heart rate."""
        if self.kind is Kind.MEAN_HR or len(self.values) == 0:
            return None
        if self.fs is None:
            return None
        return float(self.t[-1] - self.t[0]) + 1.0 / self.fs

    def on_video(self, video_duration_s: float) -> GroundTruth:
        """Samples without a rate of their own spread evenly over the video (as rPPG-Toolbox resamples them)."""
        if self.kind is Kind.MEAN_HR or self.fs is not None:
            return self
        n = len(self.values)
        fs = n / video_duration_s if video_duration_s > 0 else 0.0
        if fs <= 0:
            raise GroundTruthError(f"{self.source}: the video has no duration to spread the samples over.")
        return GroundTruth(self.source, self.format, self.kind, np.arange(n) / fs, self.values, fs,
                           0.0, False, None)


def mean_hr(source: str, fmt: str, bpm: float, *, line: int | None = None, column: int | None = None) -> GroundTruth:
    """A stated mean heart rate, checked to be a plausible human one."""
    if not math.isfinite(bpm) or not 20.0 <= bpm <= 300.0:
        raise bad(source, f"{bpm!r} is not a heart rate in beats per minute (expected 20–300)", line, column)
    return GroundTruth(source, fmt, Kind.MEAN_HR, hr_bpm=float(bpm))


@dataclass(frozen=True)
class Origin:
    """Where samples sit in their file, so a bad one is named where it is."""

    lines: np.ndarray | None = None  # the line (or packet, per ``row_name``) of each sample; None: 1, 2, ...
    value_column: int | str | None = None  # 1-based column, or a dataset/key name
    time_column: int | str | None = None
    row_name: str = "line"

    def place(self, i: int) -> int:
        return int(self.lines[i]) if self.lines is not None else i + 1


def waveform(
    source: str,
    fmt: str,
    values: Sequence[float] | np.ndarray,
    *,
    t: Sequence[float] | np.ndarray | None = None,
    fs: float | None = None,
    start_s: float | None = None,
    origin: Origin = Origin(),
) -> GroundTruth:
    """Check samples (and their times or rate) and build the waveform reference.

    ``start_s`` is the first sample's time from the video's first frame when the file says so; None
    takes the signal to start with the video. Times that repeat keep their first sample (loggers repeat a
    timestamp when they stall); times that go backwards are an error.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    offset = 0.0 if start_s is None else float(start_s)
    _finite(source, values, origin, origin.value_column, "value")
    if len(values) < MIN_SAMPLES:
        raise bad(source, f"only {len(values)} samples; a reference pulse needs at least {MIN_SAMPLES}")
    if t is None:
        if fs is not None and (not math.isfinite(fs) or fs <= 0):
            raise bad(source, f"the sampling rate {fs!r} Hz is not a positive number")
        times = np.zeros(0) if fs is None else offset + np.arange(len(values)) / fs
        return GroundTruth(source, fmt, Kind.WAVEFORM, times, values, fs, offset, start_s is not None)
    times = np.asarray(t, dtype=np.float64).ravel()
    _finite(source, times, origin, origin.time_column, "time")
    step = np.diff(times)
    backwards = np.flatnonzero(step < 0)
    if len(backwards):
        i = int(backwards[0]) + 1
        raise bad(source, f"the time {times[i]:g} goes backwards from {times[i - 1]:g}; the rows must be "
                          "in time order", origin.place(i), origin.time_column, row_name=origin.row_name)
    keep = np.concatenate(([True], step > 0))
    times, values = times[keep], values[keep]
    if len(times) < MIN_SAMPLES:
        raise bad(source, f"only {len(times)} distinct timestamps; a reference pulse needs {MIN_SAMPLES}")
    times = _seconds(times)
    rate = 1.0 / float(np.median(np.diff(times)))
    return GroundTruth(source, fmt, Kind.WAVEFORM, times - times[0] + offset, values, rate, offset,
                       start_s is not None)


def _seconds(times: np.ndarray) -> np.ndarray:
    if times[0] > EPOCH_AFTER_S:
        times = times - times[0]
    if float(np.median(np.diff(times))) > MAX_SAMPLE_STEP_S:
        times = times / 1000.0
    return times


def _finite(source: str, x: np.ndarray, origin: Origin, column: int | str | None, what: str) -> None:
    wrong = np.flatnonzero(~np.isfinite(x))
    if len(wrong):
        i = int(wrong[0])
        raise bad(source, f"the {what} is {x[i]!r}; every {what} must be a finite number", origin.place(i), column,
                  row_name=origin.row_name)


def bad(
    source: str, what: str, line: int | None = None, column: int | str | None = None, *, row_name: str = "line"
) -> GroundTruthError:
    """The error for unusable ground truth, naming the file, line (or packet) and column, and what to do."""
    place = source + (f", {row_name} {line}" if line is not None else "") + (
        f", column {column}" if column is not None else "")
    return GroundTruthError(f"{place}: {what}. Fix the file, or choose the one that belongs to this recording.",
                            source=source, line=line, column=column)
