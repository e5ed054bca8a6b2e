"""Ground-truth refusals (lib.ground_truth_files) on moto: a bad file, a BIDS table without its sidecar, a
wrong pairing, a format it cannot read and the quota all stop before anything is stored. Storing,
replacing and removing run against SeaweedFS in tests/integration/test_ground_truth_files.py."""

from __future__ import annotations

import gzip
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from lib.errors import GroundTruthError, QuotaExceeded, ValidationError
from lib.ground_truth_files import (
    TruthUpload,
    attach_ground_truth,
    describe_truth,
)
from lib.keys import record_keys
from lib.records import FileRecord, NewRecord, VideoProperties
from lib.repository import SqliteServerRecords
from lib.rppg.ground_truth import check_sync
from lib.rppg.ground_truth.model import mean_hr, waveform
from lib.storage import ObjectStore
from tests.support.unit_world import BUCKET, SETTINGS

VIDEO = VideoProperties(duration_s=20.0, fps=30.0, width=64, height=48, frame_count=600, codec="FFV1",
                        lossless=True, browser_playable=False)


def add_record(server: SqliteServerRecords, name: str = "subject7_vid.avi", size: int = 1_000) -> FileRecord:
    record_id = str(uuid.uuid4())
    keys = record_keys(server.user_id, record_id, "avi", datetime.now(UTC))
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=BUCKET, original_name=name,
                             content_type="video/x-msvideo", size_bytes=size, video=VIDEO), quota_bytes=10**12)
    return server.mark_ready(record_id, size_bytes=size, sha256="ab" * 32, video=VIDEO, thumbnail_key=None,
                           preview_key=None)


def pulse_csv(seconds: float = 20.0, fs: float = 50.0, bpm: float = 72.0) -> bytes:
    t = np.arange(int(seconds * fs)) / fs
    rows = "\n".join(f"{a:.3f},{np.sin(2 * np.pi * bpm / 60 * a):.5f}" for a in t)
    return f"time_s,ppg\n{rows}\n".encode()


def bids_pair() -> tuple[bytes, bytes]:
    table = gzip.compress("\n".join(f"{np.sin(i / 8):.4f}\t0" for i in range(2000)).encode())
    sidecar = json.dumps({"SamplingFrequency": 100, "StartTime": 0.0, "Columns": ["cardiac", "trigger"]}).encode()
    return table, sidecar


def bucket_keys(store: ObjectStore) -> set[str]:
    return {o.key for o in store.iter_all_objects()}


def test_bad_files_are_refused_by_file_line_and_column_before_anything_is_stored(store, repo, server) -> None:
    record = add_record(server)
    bad = b"time_s,ppg\n0,1\n0.02,nan\n" + b"".join(f"{i / 50:.2f},1\n".encode() for i in range(2, 20))
    with pytest.raises(GroundTruthError, match=r"broken\.csv, line 3, column 2"):
        attach_ground_truth(store, repo, server, SETTINGS, record.id, [TruthUpload("broken.csv", bad)])
    with pytest.raises(GroundTruthError, match="another recording"):  # 5 s of signal for a 20 s video
        attach_ground_truth(store, repo, server, SETTINGS, record.id, [TruthUpload("short.csv", pulse_csv(5.0))])
    with pytest.raises(ValidationError, match="end in one of"):
        attach_ground_truth(store, repo, server, SETTINGS, record.id, [TruthUpload("notes.docx", b"x")])
    with pytest.raises(ValidationError, match="Choose a ground-truth file"):
        attach_ground_truth(store, repo, server, SETTINGS, record.id, [])
    assert bucket_keys(store) == set() and repo.get(record.id) == record


def test_a_bids_table_needs_its_sidecar_and_only_a_bids_pair_is_two_files(store, repo, server) -> None:
    record = add_record(server)
    table, sidecar = bids_pair()
    with pytest.raises(GroundTruthError, match=r"needs its JSON sidecar \(sub-01_physio\.json\)"):
        attach_ground_truth(store, repo, server, SETTINGS, record.id, [TruthUpload("sub-01_physio.tsv.gz", table)])
    with pytest.raises(GroundTruthError, match="choose it together with"):
        attach_ground_truth(store, repo, server, SETTINGS, record.id, [TruthUpload("sub-01_physio.json", sidecar)])
    with pytest.raises(ValidationError, match="Choose one ground-truth file"):
        two = [TruthUpload("a.csv", b"1"), TruthUpload("b.csv", b"2")]
        attach_ground_truth(store, repo, server, SETTINGS, record.id, two)
    assert bucket_keys(store) == set() and repo.get(record.id) == record


def test_the_quota_counts_the_ground_truth(store, repo, server) -> None:
    record = add_record(server, size=1_000)
    data = pulse_csv()
    tight = replace(SETTINGS, quota_bytes=1_000 + len(data) - 1)
    with pytest.raises(QuotaExceeded, match="does not fit"):
        attach_ground_truth(store, repo, server, tight, record.id, [TruthUpload("pulse.csv", data)])
    assert bucket_keys(store) == set()


def test_the_study_quota_counts_the_ground_truth_of_a_study_recording(store, repo, server) -> None:
    study = repo.create_study("Sleep").id
    record_id = str(uuid.uuid4())
    keys = record_keys(server.user_id, record_id, "avi", datetime.now(UTC), study)
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=BUCKET, original_name="s.avi",
                             content_type="video/x-msvideo", size_bytes=1_000, video=VIDEO, study_id=study), 10**12)
    server.mark_ready(record_id, size_bytes=1_000, sha256="ab" * 32, video=VIDEO, thumbnail_key=None,
                      preview_key=None)
    data = pulse_csv()
    tight = replace(SETTINGS, study_quota_bytes=1_000 + len(data) - 1)
    with pytest.raises(QuotaExceeded, match="does not fit into the study"):
        attach_ground_truth(store, repo, server, tight, record_id, [TruthUpload("pulse.csv", data)])
    assert bucket_keys(store) == set()


def test_only_a_ready_recording_takes_ground_truth(store, repo, server) -> None:
    record = server.mark_failed(add_record(server).id, "interrupted")
    with pytest.raises(ValidationError, match="ready"):
        attach_ground_truth(store, repo, server, SETTINGS, record.id, [TruthUpload("pulse.csv", pulse_csv())])


def test_describe_says_what_was_read_and_warns_about_sync() -> None:
    t = np.arange(1000) / 50.0
    truth = waveform("p.csv", "csv", np.sin(t), t=t)
    text = describe_truth(truth, check_sync(truth, 22.0))
    assert "1,000 samples at 50 Hz" in text and "Video 22.0 s, signal 20.0 s, offset +0.00 s (assumed)" in text
    assert "check that they were recorded together" in text
    described = describe_truth(mean_hr("hr.txt", "mean_hr", 64.0), None)
    assert described == "hr.txt: a mean heart rate of 64.0 bpm (mean_hr)."
