"""The driver's world without Ray, for unit tests of batch jobs: an in-process engine that answers what a worker
would, ready rows (with their originals in the moto bucket) and a job owner's backends."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from lib.checks.values import AnalysisTask
from lib.jobs import SqliteJobs
from lib.jobs.derive import DeriveTask
from lib.jobs.driver import OwnerBackends
from lib.jobs.engine import Outcome, WorkerLost
from lib.keys import record_keys
from lib.records import NewRecord, VideoProperties
from lib.repository import SqliteAuditLog, SqliteServerRecords
from lib.rppg import AnalysisSummary
from lib.storage import ObjectStore
from tests.support.unit_world import BUCKET

VIDEO = VideoProperties(duration_s=10.0, fps=30.0, width=64, height=48, frame_count=300, codec="FFV1",
                        lossless=True, browser_playable=False)
SUMMARY = AnalysisSummary(method="POS", hr_bpm=71.0, snr_db=3.0, hr_track=(), pulse=(), pulse_fs=0.0, flags=(),
                          frames_analysed=300, seconds_taken=0.4)


class HereEngine:
    """Runs nothing: answers each submitted task with ``answer(task)`` on the next wait."""

    def __init__(self, answer: Callable[[Any], Outcome | WorkerLost], slots: int = 1) -> None:
        self.answer = answer
        self._slots = slots
        self.submitted: list[Any] = []
        self.cancelled: list[Any] = []

    @property
    def slots(self) -> int:
        return self._slots

    def submit(self, task: AnalysisTask | DeriveTask) -> Any:
        self.submitted.append(task)
        return len(self.submitted)

    def wait(self, handles: Sequence[Any], timeout_s: float) -> list[tuple[Any, Outcome | WorkerLost]]:
        return [(h, self.answer(self.submitted[h - 1])) for h in handles]

    def cancel(self, handles: Sequence[Any]) -> None:
        self.cancelled.extend(handles)


def add_record(server: SqliteServerRecords, store: ObjectStore | None = None) -> str:
    """A ready row (and its original in the bucket, when given one)."""
    record_id = str(uuid.uuid4())
    keys = record_keys(server.user_id, record_id, "avi", datetime.now(UTC))
    if store is not None:
        store._client.put_object(Bucket=BUCKET, Key=keys.original, Body=b"0123456789")
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=BUCKET, original_name=f"{record_id}.avi",
                             content_type="video/x-msvideo", size_bytes=10, video=VIDEO), 10**9)
    server.mark_ready(record_id, size_bytes=10, sha256=None, video=VIDEO, thumbnail_key=None, preview_key=None)
    return record_id


def owner_of(store: ObjectStore, server: SqliteServerRecords, tmp_path) -> OwnerBackends:
    return OwnerBackends(store, server, SqliteJobs(server.db_path, server.user_id),
                         SqliteAuditLog(server.db_path, server.user_id), tmp_path / "work")
