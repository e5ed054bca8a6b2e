"""Export in Chromium, demo mode: two recordings with ground truth leave My files as an rPPG-Toolbox / UBFC-rPPG
dataset. The test clicks the dialog's download link (the app's one-time streamed-zip route, authorised by the
browser's own session cookie), saves the zip Chromium downloads, unpacks it, checks SHA256SUMS, reads each
subject back as the toolbox would and with the project's ground-truth parser, and finds the export in the
audit trail under each subject.

This module gets its own demo app (``demo_app`` is module-scoped).
"""

from __future__ import annotations

import re
import uuid
import zipfile
from pathlib import Path

import pytest

from lib.audit import AuditAction, AuditFilter
from lib.auth import DemoAuth
from lib.demo import DEMO_BUCKET, DEMO_EMAIL, DEMO_PASSWORD, DEMO_REGION
from lib.records import FileRecord, ResearchFields
from lib.repository import SqliteAuditLog
from lib.rppg.ground_truth import Kind, load_ground_truth
from lib.rppg.ground_truth.reference import ground_truth_hr
from lib.settings import S3Settings
from lib.storage import ObjectStore
from tests.e2e.test_journey import go, search
from tests.support.browser import sign_in
from tests.support.demo_storage import demo_storage
from tests.support.export_world import attach, check_sums, pulse_csv, read_csv, read_ubfc, store_recording
from tests.support.records import sqlite_rows

PREPARE_TIMEOUT_MS = 60_000
"""HEADs of every recording and the ground truth fetched and converted, on a shared machine."""
SUBJECTS = {"12": 72.0, "13": 90.0}
"""Each recording's subject field and the pulse of its ground truth (bpm)."""


def _store(app) -> tuple[ObjectStore, Path]:
    """The running demo's bucket (as the test reaches it) and its database file."""
    found = demo_storage(app)
    s3 = S3Settings(bucket=DEMO_BUCKET, region=DEMO_REGION, access_key_id=found.access_key_id,
                    secret_access_key=found.secret_access_key, endpoint_url=found.endpoint)
    return ObjectStore(s3), found.db_path


def _seed(app, token: str) -> tuple[Path, str, dict[str, FileRecord]]:
    """Two ready recordings of the demo account with pulse ground truth: (database, user id, subject -> row)."""
    store, db = _store(app)
    rows = sqlite_rows(db, DemoAuth(db).ensure_account(DEMO_EMAIL, DEMO_PASSWORD))
    seeded = {}
    for subject, bpm in SUBJECTS.items():
        record = store_recording(store, rows.server, f"{token} subject {subject}.avi", uuid.uuid4().bytes * 4096,
                                 ResearchFields(subject_id=subject))
        seeded[subject] = attach(store, rows.server, record, pulse_csv(bpm=bpm))
    return db, rows.repo.user_id, seeded


def _download_export(page, into: Path) -> Path:
    """Open Export dataset over the current filter, choose UBFC-rPPG, prepare it and click the download link;
    the zip Chromium saved."""
    page.get_by_role("button", name="Export dataset").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("rPPG-Toolbox / UBFC-rPPG", exact=False).click()
    dialog.get_by_role("button", name="Prepare export").click()
    dialog.get_by_text(re.compile(r"Ready: 2 recordings")).wait_for(timeout=PREPARE_TIMEOUT_MS)
    link = dialog.get_by_role("link", name=re.compile(r"Download pulsevault-ubfc-.*\.zip"))
    # st.link_button opens a new tab; the same click in this tab keeps the download on this page's events.
    link.evaluate("a => a.removeAttribute('target')")
    with page.expect_download(timeout=PREPARE_TIMEOUT_MS) as started:
        link.click()
    download = started.value
    assert download.failure() is None
    saved = into / download.suggested_filename
    download.save_as(saved)
    return saved


def test_a_ubfc_export_downloads_in_chromium_and_reads_back(demo_app, page, tmp_path: Path) -> None:
    sign_in(page, demo_app.url, DEMO_EMAIL, DEMO_PASSWORD)
    page.get_by_role("heading", name="Upload").first.wait_for()
    token = f"export{uuid.uuid4().hex[:8]}"
    db, user_id, seeded = _seed(demo_app, token)
    go(page, "My files")
    search(page, token, expected_total=2)

    saved = _download_export(page, tmp_path)
    assert re.fullmatch(r"pulsevault-ubfc-\d{8}-\d{6}\.zip", saved.name), saved.name
    with zipfile.ZipFile(saved) as archive:
        assert archive.testzip() is None  # every member's CRC holds
        archive.extractall(tmp_path / "out")
    (root,) = (tmp_path / "out").iterdir()

    sums = check_sums(root)  # every file listed, every digest right, nothing unlisted
    mapping = {row["subject_id"]: row["path"] for row in read_csv(root / "mapping.csv")}
    subjects = {s.index: s for s in read_ubfc(root)}
    assert sorted(subjects) == ["subject12", "subject13"]
    store, _ = _store(demo_app)
    for subject, bpm in SUBJECTS.items():
        record, folder = seeded[subject], mapping[subject]
        assert folder == f"subject{subject}" and sums[f"{folder}/vid.avi"] == record.sha256
        original = store._client.get_object(Bucket=DEMO_BUCKET, Key=record.s3_key)["Body"].read()
        assert subjects[folder].video.read_bytes() == original
        assert len(subjects[folder].bvp) == 1000  # 20 s of pulse at 50 Hz, as attached
        truth = load_ground_truth(root / folder / "ground_truth.txt")
        assert truth.format == "ubfc_dataset2" and truth.kind is Kind.WAVEFORM
        hr = ground_truth_hr(truth, start_s=float(truth.t[0]), end_s=float(truth.t[-1]))
        assert hr == pytest.approx(bpm, abs=1.5)

        (entry,) = SqliteAuditLog(db, user_id).entries(AuditFilter(study_id=None, subject_id=subject,
                                                                   actions=(AuditAction.EXPORT,)))
        assert entry.record_id == record.id and entry.detail["files"] == [f"{folder}/vid.avi",
                                                                          f"{folder}/ground_truth.txt"]
        assert entry.detail["root"] == root.name
