"""Stored recordings for batch-job tests and bench/batch.py: generated clips (tests/support/synthetic_pulse.py)
put straight into the bucket under their row's keys, and ready rows written by the server for their owner,
so a job has real videos (and ground truth) to decode without running the upload pipeline for each."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lib.keys import record_keys
from lib.records import FileRecord, GroundTruthFile, NewRecord, VideoProperties
from lib.repository import ServerRecords
from tests.support.synthetic_pulse import ClipSpec, make_clip, write_ground_truth_csv

QUOTA = 10**12
CLIP = ClipSpec(seconds=8.0, size=(160, 120))
"""Small enough to decode in about a second, long enough for the quick look's windows."""


@dataclass(frozen=True)
class ClipFiles:
    video: bytes
    truth: bytes
    fps: float
    frames: int


def clip_files(folder: Path, spec: ClipSpec = CLIP) -> ClipFiles:
    """One generated clip and its ground-truth CSV, as bytes."""
    clip = make_clip(folder / f"clip-{spec.seed}-{spec.hr_bpm}.avi", spec)
    truth = write_ground_truth_csv(clip, folder / f"truth-{spec.seed}-{spec.hr_bpm}.csv")
    return ClipFiles(clip.path.read_bytes(), truth.read_bytes(), spec.fps, len(clip.ppg_t))


def store_recording(client: Any, bucket: str, server: ServerRecords, files: ClipFiles, *,
                    name: str = "clip.avi", with_truth: bool = False, study_id: str | None = None) -> FileRecord:
    """A ready recording of ``server``'s user holding ``files`` (and its ground truth when asked), in their
    personal space or (``study_id``) a study they upload to."""
    record_id = str(uuid.uuid4())
    keys = record_keys(server.user_id, record_id, "avi", datetime.now(UTC), study_id)
    client.put_object(Bucket=bucket, Key=keys.original, Body=files.video)
    video = VideoProperties(duration_s=files.frames / files.fps, fps=files.fps, width=CLIP.size[0],
                            height=CLIP.size[1], frame_count=files.frames, codec="FFV1", lossless=True,
                            browser_playable=False)
    size = len(files.video)
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=bucket, original_name=name,
                             content_type="video/x-msvideo", size_bytes=size, video=video,
                             study_id=study_id), QUOTA)
    record = server.mark_ready(record_id, size_bytes=size, sha256=None, video=video, thumbnail_key=None,
                               preview_key=None)
    if not with_truth:
        return record
    truth_key = keys.ground_truth("truth.csv")
    client.put_object(Bucket=bucket, Key=truth_key, Body=files.truth)
    return server.set_ground_truth(record_id, GroundTruthFile(truth_key, "truth.csv", len(files.truth)))
