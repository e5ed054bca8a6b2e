"""Ground truth beside a recording, end to end: SeaweedFS over real HTTP (presigned PUTs), SQLite and the
Supabase stand-in (whose usage is sql/002's). Storing keeps the original name and counts in usage;
replacing removes the old object; removing detaches and deletes; a BIDS table goes with its sidecar and
reconciliation counts neither as an orphan; a re-analysis reads the stored file."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from lib import usage
from lib.ground_truth_files import TruthUpload, attach_ground_truth, load_record_truth, remove_ground_truth
from lib.keys import record_keys
from lib.records import FileRecord, NewRecord, VideoProperties
from lib.repository import Repository, ServerRecords
from lib.rppg.ground_truth import Kind
from lib.rppg.results import GROUND_TRUTH_SYNC, AnalysisSummary, QualityFlag, Severity
from lib.storage import ObjectStore
from lib.transfer import ObjectTarget, upload_file
from tests.support.records import UserRows, sqlite_rows, supabase_rows

VIDEO = VideoProperties(duration_s=20.0, fps=30.0, width=64, height=48, frame_count=600, codec="FFV1",
                        lossless=True, browser_playable=False)

MakeRepo = Callable[[], Repository]


@pytest.fixture(params=["sqlite", "supabase"])
def rows(request: pytest.FixtureRequest, tmp_path: Path) -> UserRows:
    """(repository, server records) of a fresh user, on SQLite or on Supabase (the stand-in)."""
    if request.param == "sqlite":
        return sqlite_rows(tmp_path / "demo.db")
    return supabase_rows(request.getfixturevalue("supabase_standin"))


@pytest.fixture
def repo(rows: UserRows) -> Repository:
    return rows.repo


@pytest.fixture
def server(rows: UserRows) -> ServerRecords:
    return rows.server


def stored_recording(store: ObjectStore, server: ServerRecords, tmp_path: Path, name: str = "subject7_vid.avi"
                     ) -> FileRecord:
    record_id = str(uuid.uuid4())
    keys = record_keys(server.user_id, record_id, "avi", datetime.now(UTC))
    body = tmp_path / "original.avi"
    body.write_bytes(b"RIFF" + bytes(996))
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=store.bucket, original_name=name,
                             content_type="video/x-msvideo", size_bytes=1_000, video=VIDEO), quota_bytes=10**12)
    upload_file(store, ObjectTarget(keys.original, server.user_id, "video/x-msvideo"), body)
    return server.mark_ready(record_id, size_bytes=1_000, sha256=None, video=VIDEO, thumbnail_key=None,
                           preview_key=None)


def pulse_csv(seconds: float = 20.0, fs: float = 50.0, bpm: float = 72.0) -> bytes:
    t = np.arange(int(seconds * fs)) / fs
    return ("time_s,ppg\n" + "".join(f"{a:.3f},{np.sin(2 * np.pi * bpm / 60 * a):.5f}\n" for a in t)).encode()


def keys_under(store: ObjectStore, record: FileRecord) -> set[str]:
    prefix = record.s3_key.rsplit("/", 1)[0] + "/"
    return {o.key for o in store.iter_objects(prefix, owner=record.user_id)}


def test_store_replace_and_remove_with_usage_counted(store, repo, server, settings, tmp_path) -> None:
    record = stored_recording(store, server, tmp_path)
    sync = QualityFlag(GROUND_TRUTH_SYNC, Severity.WARNING, 2.0, 1.0, "out of sync", "s")
    compared = AnalysisSummary(method="POS", hr_bpm=71.0, snr_db=4.0, hr_track=(), pulse=(), pulse_fs=0.0,
                               flags=(sync,), frames_analysed=600, seconds_taken=1.0, ground_truth_hr_bpm=90.0,
                               hr_error_bpm=-19.0)
    server.set_analysis(record.id, compared.to_json())
    assert repo.usage().total_bytes == 1_000
    first = pulse_csv()
    attached = attach_ground_truth(store, repo, server, settings, record.id, [TruthUpload("Subject 7 PPG.csv", first)])
    row = attached.record
    assert (row.ground_truth_name, row.ground_truth_bytes) == ("Subject 7 PPG.csv", len(first))
    assert keys_under(store, record) == {record.s3_key, row.ground_truth_key}
    assert store.head(row.ground_truth_key, owner=repo.user_id).size == len(first)
    assert repo.usage().total_bytes == 1_000 + len(first)
    assert attached.sync is not None and attached.sync.warning is None
    # The comparison with the earlier truth is dropped, the estimate kept, until a re-analysis compares anew.
    assert AnalysisSummary.from_json(row.analysis) == replace(compared, ground_truth_hr_bpm=None, hr_error_bpm=None,
                                                              flags=())

    pure = {"/FullPackage": [{"Timestamp": i * 20_000_000, "Value": {"waveform": float(np.sin(i / 8))}}
                             for i in range(1000)]}
    second = json.dumps(pure).encode()
    replaced = attach_ground_truth(store, repo, server, settings, record.id, [TruthUpload("01-01.json", second)]).record
    assert replaced.ground_truth_key.endswith("/ground_truth.json") and replaced.ground_truth_name == "01-01.json"
    assert keys_under(store, record) == {record.s3_key, replaced.ground_truth_key}  # the CSV is gone
    assert repo.usage().total_bytes == 1_000 + len(second)
    truth = load_record_truth(store, replaced, tmp_path, owner=repo.user_id)
    assert truth is not None and truth.format == "pure"

    removed = remove_ground_truth(store, repo, server, record.id)
    assert (removed.ground_truth_key, removed.ground_truth_name, removed.ground_truth_bytes) == (None, None, 0)
    assert keys_under(store, record) == {record.s3_key}
    assert repo.usage().total_bytes == 1_000


def test_a_bids_pair_is_stored_together_and_is_no_orphan(store, repo, server, settings, tmp_path) -> None:
    record = stored_recording(store, server, tmp_path)
    table = gzip.compress("".join(f"{np.sin(i / 8):.4f}\t0\n" for i in range(2000)).encode())
    sidecar = json.dumps({"SamplingFrequency": 100, "StartTime": -0.5, "Columns": ["cardiac", "trigger"]}).encode()
    files = [TruthUpload("sub-07_task-rest_physio.tsv.gz", table),
             TruthUpload("sub-07_task-rest_physio.json", sidecar)]
    attached = attach_ground_truth(store, repo, server, settings, record.id, files)
    row = attached.record
    assert row.ground_truth_bytes == len(table) + len(sidecar)
    assert len(keys_under(store, record)) == 3 and repo.usage().total_bytes == 1_000 + len(table) + len(sidecar)
    assert attached.sync is not None and attached.sync.offset_s == -0.5 and attached.sync.offset_from_file
    assert usage.reconcile(store, repo, repo.user_id, settings).ok
    truth = load_record_truth(store, row, tmp_path, owner=repo.user_id)
    assert truth is not None and truth.kind is Kind.WAVEFORM and truth.fs == 100.0
    remove_ground_truth(store, repo, server, record.id)
    assert keys_under(store, record) == {record.s3_key}
