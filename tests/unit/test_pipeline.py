"""lib/pipeline's small parts: progress reports, checksums, the size limit, the session workspace
(lib/workspace.py), and the demo sample clip (lib/sample.py)."""

from __future__ import annotations

import gc
import hashlib
import io
from pathlib import Path

import cv2
import pytest

from lib import pipeline
from lib.errors import FileTooLarge
from lib.pipeline import Progress, Step, check, limits, progress
from lib.sample import SampleSpec, write_sample
from lib.workspace import Workspace


def test_progress_in_bytes_describes_amount_and_rate() -> None:
    p = Progress(Step.UPLOAD_ORIGINAL, done=3 * 1024 * 1024, total=12 * 1024 * 1024, unit="bytes",
                 rate_bps=4.5 * 1024 * 1024)
    assert p.fraction == 0.25
    assert p.describe() == "Uploading the recording: 3.0 MiB of 12.0 MiB · 4.5 MiB/s"


def test_progress_fraction_is_clamped_and_total_zero_is_done() -> None:
    assert Progress(Step.ANALYSE, done=2.0, total=1.0).fraction == 1.0
    assert Progress(Step.ANALYSE, done=-1.0, total=1.0).fraction == 0.0
    assert Progress(Step.CHECKSUM, done=0, total=0, unit="bytes").fraction == 1.0
    assert Progress(Step.PREVIEW, done=0.5, total=1.0).describe() == "Making a browser-playable preview: 50%"


def test_every_step_has_a_label() -> None:
    assert set(pipeline.STEP_LABELS) == set(Step)


def test_reporter_drops_updates_closer_than_the_interval_but_never_a_step_change_or_the_end(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    seen: list[Progress] = []
    report = pipeline.Reporter(seen.append)
    report.step(Step.CHECKSUM)
    for done in (1, 2, 3):
        report(Step.CHECKSUM, done, 10, unit="bytes")  # same instant: dropped
    clock[0] += 2 * progress.REPORT_EVERY_S
    report(Step.CHECKSUM, 4, 10, unit="bytes")
    report(Step.CHECKSUM, 10, 10, unit="bytes")  # finished: always reported
    report(Step.ANALYSE, 0.0, 1.0)  # new step: always reported
    assert [(p.step, p.done) for p in seen] == [
        (Step.CHECKSUM, 0.0), (Step.CHECKSUM, 4), (Step.CHECKSUM, 10), (Step.ANALYSE, 0.0),
    ]


def test_reporter_without_callback_does_nothing() -> None:
    pipeline.Reporter(None)(Step.READY, 1, 1)


def test_a_step_without_a_measure_reports_its_end() -> None:
    """Looking for duplicates has no percentage of its own: its bar goes from 0% to 100%, never stays at 0%."""
    seen: list[Progress] = []
    report = pipeline.Reporter(seen.append)
    report.step(Step.DUPLICATES)
    report.done(Step.DUPLICATES)
    assert [p.describe() for p in seen] == ["Looking for duplicates: 0%", "Looking for duplicates: 100%"]


def test_the_size_limit_names_the_file_and_both_sizes() -> None:
    limits.check_size("a.avi", 1024, 1024)
    with pytest.raises(FileTooLarge, match=r"^rec\.avi is 2\.0 KiB, over the 1\.0 KiB upload limit\.$"):
        limits.check_size("C:\\lab/rec.avi", 2048, 1024)


def test_sha256_streams_in_blocks_and_reports_bytes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(check, "CHUNK_BYTES", 1000)
    data = bytes(range(256)) * 10
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    seen: list[int] = []
    assert pipeline.sha256_file(path, progress=seen.append) == hashlib.sha256(data).hexdigest()
    assert seen == [1000, 2000, 2560]


def test_workspace_saves_streams_into_private_slots_and_removes_them(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    stream = io.BytesIO(b"video bytes")
    stream.read()  # the page may hand over a stream that was read before
    path = ws.save("abc-123", stream, "Session 1/Rec.AVI")
    assert path.read_bytes() == b"video bytes"
    assert path.name == "original.avi" and path.parent == ws.slot("abc-123")
    assert ws.slot("../../etc").parent == ws.root  # a slot id cannot climb out
    ws.remove("abc-123")
    assert not path.parent.exists()
    ws.close()
    assert not ws.root.exists()


def test_workspace_folder_goes_with_the_object(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    root = ws.root
    ws.save("x", io.BytesIO(b"1"), "a.mp4")
    del ws
    gc.collect()
    assert not root.exists()


@pytest.mark.parametrize(("given", "changed"), [("rec.avi", False), ("lab/day 1/rec.avi", False),
                                                 ("rec\x00.avi", True)])
def test_name_changed_ignores_folders(given: str, changed: bool, tmp_path: Path) -> None:
    from lib.keys import sanitize_filename

    prepared = pipeline.PreparedRecording(
        path=tmp_path / "x", given_name=given, original_name=sanitize_filename(given), workdir=tmp_path,
        container=None, video=None, size_bytes=0, sha256="", thumbnail=tmp_path / "t", preview=None,  # type: ignore[arg-type]
    )
    assert prepared.name_changed is changed


def test_sample_clip_is_a_lossless_face_video(tmp_path: Path) -> None:
    spec = SampleSpec(seconds=1.0, fps=15.0, width=160, height=120)
    path = write_sample(tmp_path / "sample.avi", spec)
    cap = cv2.VideoCapture(str(path))
    try:
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 15
        assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (160, 120)
        ok, frame = cap.read()
    finally:
        cap.release()
    assert ok
    centre = frame[60, 80].astype(int)  # skin: red above blue, like the face we drew
    assert centre[2] > centre[0]
