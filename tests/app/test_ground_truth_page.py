"""AppTest of ground truth in the app (components/ground_truth.py) in demo mode. My files: attach a file (the
demo's S3 server over real HTTP), see its name, replace it, refuse a bad one with the file, line and
column, and remove it. The Upload card: attach one once the recording is stored, or the one a picked folder
paired with the video by itself."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from components import state_keys
from lib.records import FileRecord
from tests.app.test_files_page import add, click, demo_repo, files_page, names, run, search, select
from tests.app.test_upload_page import _click, _clip, _demo_rows, _drop, _signed_in_upload_page
from tests.support.apptest import store_anyway


@pytest.fixture
def page() -> AppTest:
    return files_page()


def unique(name: str) -> str:
    """Other app tests share the demo account: a token in the name finds this test's records alone."""
    return f"t{uuid.uuid4().hex[:10]} {name}"


def pulse_csv(seconds: float = 10.0, fs: float = 50.0) -> bytes:
    t = np.arange(int(seconds * fs)) / fs
    return ("t,ppg\n" + "".join(f"{a:.2f},{np.sin(2 * np.pi * 1.2 * a):.4f}\n" for a in t)).encode()


def submit(at: AppTest, record: FileRecord, files: list[tuple[str, bytes]], label: str) -> AppTest:
    picker = at.file_uploader(key=state_keys.ground_truth("file", record.id))
    picker.set_value([(name, data, "text/csv") for name, data in files])
    next(b for b in at.button if b.label == label).click()
    return run(at)


def opened(at: AppTest, record: FileRecord) -> AppTest:
    search(at, record.original_name)
    assert names(at) == [record.original_name]
    return select(at, 0)


def test_attach_replace_refuse_and_remove(page: AppTest) -> None:
    at = page
    record = add(unique("subject.avi"), objects=True)  # 10 s long
    opened(at, record)
    assert any("No ground truth attached" in c.value for c in at.caption)

    submit(at, record, [("Subject PPG.csv", pulse_csv())], "Attach")
    row = demo_repo().get(record.id)
    assert row.ground_truth_name == "Subject PPG.csv" and row.ground_truth_bytes == len(pulse_csv())
    assert any("Ground truth attached" in s.value and "500 samples at 50 Hz" in s.value for s in at.success)
    assert any("Subject PPG.csv" in m.value for m in at.markdown)

    bad = b"t,ppg\n" + b"".join(f"{i / 50:.2f},{'inf' if i == 7 else 1}\n".encode() for i in range(500))
    submit(at, record, [("bad.csv", bad)], "Replace")
    assert any("bad.csv, line 9, column 2" in e.value for e in at.error)
    assert demo_repo().get(record.id) == row  # nothing changed

    submit(at, record, [("hr.txt", b"68\n")], "Replace")
    assert demo_repo().get(record.id).ground_truth_name == "hr.txt"

    click(at, "Remove")
    assert demo_repo().get(record.id).ground_truth_key is None
    assert any("Ground truth removed" in s.value for s in at.success)


def test_a_bids_table_without_its_sidecar_is_refused(page: AppTest) -> None:
    at = page
    record = add(unique("bids.avi"), objects=True)
    opened(at, record)
    submit(at, record, [("sub-01_physio.tsv.gz", b"\x1f\x8b")], "Attach")
    assert any("needs its JSON sidecar" in e.value for e in at.error)
    assert demo_repo().get(record.id).ground_truth_key is None


def test_the_upload_card_attaches_ground_truth_once_stored(tmp_path) -> None:
    at = store_anyway(_drop(_signed_in_upload_page(), ("gt card clip.avi", _clip(tmp_path, 41))))  # no face
    _click(at, "Upload")
    [row] = [r for r in _demo_rows() if r.original_name == "gt card clip.avi"]
    assert "Ground truth (optional)" in [e.label for e in at.expander]
    picker = at.file_uploader(key=state_keys.ground_truth("file", row.id, "upload"))
    picker.set_value([("mean hr.txt", b"66\n", "text/plain")])
    _click(at, "Attach")
    stored = demo_repo().get(row.id)
    assert (stored.ground_truth_name, stored.ground_truth_bytes) == ("mean hr.txt", 3)
    assert any("Ground truth attached: mean hr.txt" in c.value for c in at.caption)
    assert any("a mean heart rate of 66.0 bpm" in s.value for s in at.success)


def test_a_folder_pairs_its_ground_truth_and_the_card_attaches_it_once_stored(tmp_path) -> None:
    subject = unique("subject").replace(" ", "-")  # the demo account is shared: no other test's folder
    at = _signed_in_upload_page()
    at.file_uploader(key=state_keys.UPLOAD_FOLDER).set_value([
        (f"UBFC/{subject}/vid.avi", _clip(tmp_path, 42), "video/x-msvideo"),
        (f"UBFC/{subject}/ground_truth.txt", b"71\n", "text/plain"),
        ("UBFC/extra/spare_bvp.csv", b"t,bvp\n0,1\n", "text/csv"),
    ])
    at.run()
    assert not at.exception, at.exception
    [found] = [e for e in at.expander if e.label == "Ground truth found in the folder"]
    summary = " ".join(c.value for c in found.caption)
    assert "Paired 1 of 1 videos with their ground truth." in summary
    assert "Left alone (no video matched): UBFC/extra/spare_bvp.csv." in summary
    assert "**vid.avi**" in " ".join(str(m.value) for m in at.markdown)  # one card: the CSV is no recording
    _click(store_anyway(at), "Upload")
    [record_id] = [c.value.removeprefix("Record ") for c in at.caption if c.value.startswith("Record ")]
    row = demo_repo().get(record_id)
    assert (row.original_name, row.ground_truth_name, row.ground_truth_bytes) == ("vid.avi", "ground_truth.txt", 3)
    assert any("Ground truth attached: ground_truth.txt" in c.value for c in at.caption)
    assert any("a mean heart rate of 71.0 bpm" in s.value for s in at.success)
    at.run()  # attached once: a later run neither repeats it nor fails
    assert not at.exception and demo_repo().get(row.id).ground_truth_name == "ground_truth.txt"
