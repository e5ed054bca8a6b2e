"""Recordings to export, made straight in a store and a repository (unit tier: moto; integration: SeaweedFS):
the original's bytes, its row marked ready with the real checksum, and ground truth attached as the app
attaches it (object beside the recording, row pointing at it). Plus readers for what an export holds."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lib.keys import extension_of, ground_truth_sidecar, record_keys, record_keys_of
from lib.records import FileRecord, GroundTruthFile, NewRecord, ResearchFields, VideoProperties
from lib.repository import ServerRecords
from lib.storage import ObjectStore

VIDEO = VideoProperties(duration_s=20.0, fps=30.0, width=64, height=48, frame_count=600, codec="FFV1",
                        lossless=True, browser_playable=False)
PULSE_BPM = 72.0


@dataclass(frozen=True)
class Truth:
    """A ground-truth file as a researcher attaches it: name and bytes (and a BIDS sidecar)."""

    name: str
    data: bytes
    sidecar: bytes | None = None


def pulse_csv(seconds: float = 20.0, fs: float = 50.0, bpm: float = PULSE_BPM) -> Truth:
    t = np.arange(int(seconds * fs)) / fs
    rows = "\n".join(f"{a:.3f},{np.sin(2 * np.pi * bpm / 60 * a):.5f}" for a in t)
    return Truth("pulse.csv", f"time_s,ppg\n{rows}\n".encode())


def bids_truth(seconds: float = 20.0, fs: float = 100.0, start_s: float = -1.5, bpm: float = PULSE_BPM) -> Truth:
    t = np.arange(int(seconds * fs)) / fs
    table = gzip.compress("\n".join(f"{np.sin(2 * np.pi * bpm / 60 * a):.5f}\t0" for a in t).encode())
    sidecar = json.dumps({"SamplingFrequency": fs, "StartTime": start_s, "Columns": ["cardiac", "trigger"]})
    return Truth("rec_physio.tsv.gz", table, sidecar.encode())


def mean_hr_truth(bpm: float = PULSE_BPM) -> Truth:
    return Truth("hr.txt", f"{bpm}\n".encode())


def add_recording(store: ObjectStore, server: ServerRecords, name: str, *, subject: str = "", session: str = "",
                  truth: Truth | None = None, analysis: dict | None = None) -> FileRecord:
    """A ready recording (stored as ``name``'s extension) with its bytes in the bucket, and its ground truth and
    analysis, for ``server``'s user."""
    record = store_recording(store, server, name, uuid.uuid4().bytes * 64,
                             ResearchFields(subject_id=subject, session_label=session))
    if analysis is not None:
        record = server.set_analysis(record.id, analysis)
    if truth is not None:
        record = attach(store, server, record, truth)
    return record


def store_recording(store: ObjectStore, server: ServerRecords, name: str, data: bytes,
                    research: ResearchFields) -> FileRecord:
    """``data`` in the bucket as ``name``'s original and its row marked ready with the real checksum."""
    record_id = str(uuid.uuid4())
    keys = record_keys(server.user_id, record_id, extension_of(name), datetime.now(UTC))
    store._client.put_object(Bucket=store.bucket, Key=keys.original, Body=data)
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=store.bucket, original_name=name,
                             content_type="video/x-msvideo", size_bytes=len(data), research=research, video=VIDEO),
                   quota_bytes=10**13)
    return server.mark_ready(record_id, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), video=VIDEO,
                             thumbnail_key=None, preview_key=None)


def attach(store: ObjectStore, server: ServerRecords, record: FileRecord, truth: Truth) -> FileRecord:
    key = record_keys_of(record.s3_key).ground_truth(truth.name)
    store._client.put_object(Bucket=store.bucket, Key=key, Body=truth.data)
    size = len(truth.data)
    sidecar_key = ground_truth_sidecar(key)
    if truth.sidecar is not None and sidecar_key is not None:
        store._client.put_object(Bucket=store.bucket, Key=sidecar_key, Body=truth.sidecar)
        size += len(truth.sidecar)
    return server.set_ground_truth(record.id, GroundTruthFile(key, truth.name, size))


def unpack(archive: bytes, into: Path) -> Path:
    """Unzip an export and return its one top folder."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert zf.testzip() is None  # every member's CRC holds
        zf.extractall(into)
    (root,) = [p for p in into.iterdir() if p.is_dir()]
    return root


def check_sums(root: Path) -> dict[str, str]:
    """``sha256sum -c SHA256SUMS`` in Python: every listed file exists with that digest, and every file but
    SHA256SUMS is listed. Returns path -> digest."""
    listed = {}
    for line in (root / "SHA256SUMS").read_text().splitlines():
        digest, path = line.split("  ", 1)
        listed[path] = digest
        assert hashlib.sha256((root / path).read_bytes()).hexdigest() == digest, path
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert present == set(listed)
    return listed


def read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")), delimiter=delimiter))


@dataclass(frozen=True)
class UbfcSubject:
    index: str
    video: Path
    bvp: np.ndarray


def read_ubfc(data_path: Path) -> list[UbfcSubject]:
    """A UBFC-rPPG reader written from rPPG-Toolbox's documented layout (dataset/data_loader/UBFCrPPGLoader):
    the dataset folders are ``data_path/subject*``, each one's index is ``subject(\\d+)`` in its name, the
    video is ``vid.<ext>`` in it and the BVP label is the first line of ``ground_truth.txt``, split on
    whitespace and read as floats."""
    subjects = []
    for folder in sorted(data_path.glob("subject*")):
        index = re.search(r"subject(\d+)", folder.name)
        assert index is not None, folder
        (video,) = folder.glob("vid.*")
        first_line = (folder / "ground_truth.txt").read_text().split("\n")[0]
        subjects.append(UbfcSubject(index.group(0), video, np.asarray([float(x) for x in first_line.split()])))
    return subjects
