"""Exports on moto's S3 and SQLite (lib.export): each layout is zipped, unpacked and read back by the
project's own ground-truth parser, a checksum check and (UBFC) a reader written from rPPG-Toolbox's
documented layout; every refusal comes before anything is sent. The route, the manifest's links and the
fetch script run against SeaweedFS in tests/integration/test_export.py."""

from __future__ import annotations

import csv
import gzip
import io
import json
import threading
import zipfile
from dataclasses import replace
from datetime import UTC, datetime
from io import BytesIO

import numpy as np
import pytest
import yaml

from lib.audit import Actor, AuditAction, AuditFilter, AuditTrail, describe
from lib.auth import DemoAuth
from lib.errors import AuditUnavailable, ExportRefused, MetadataUnavailable
from lib.export import Delivery, ExportRequest, ExportTickets, Layout, Selection, prepare_export
from lib.export.archive import export_zip, read_ahead
from lib.export.plan import build_plan, check_plan_unchanged
from lib.keys import Space
from lib.records import Consent, ListQuery, ResearchFields
from lib.repository import SqliteAuditLog, SqliteRepository, SqliteServerRecords
from lib.rppg.ground_truth import Kind, load_ground_truth
from lib.settings import Settings
from lib.studies import Role
from tests.support.audit import trail_of
from tests.support.export_world import (
    PULSE_BPM,
    add_recording,
    attach,
    bids_truth,
    check_sums,
    mean_hr_truth,
    pulse_csv,
    read_csv,
    read_ubfc,
    store_recording,
    unpack,
)
from tests.support.unit_world import SETTINGS, USER

NOW = datetime(2026, 12, 2, 5, 0, 0, tzinfo=UTC)


def zipped(store, plan) -> bytes:
    archive = export_zip(store, plan)
    data = b"".join(archive)
    assert len(data) == len(archive)  # the Content-Length the route sends is the real size
    return data


def ids(*records) -> Selection:
    return Selection(record_ids=tuple(r.id for r in records))


def hr_of(path) -> float:
    from lib.rppg.ground_truth.reference import ground_truth_hr

    truth = load_ground_truth(path)
    return ground_truth_hr(truth, start_s=float(truth.t[0]), end_s=float(truth.t[-1]))


# --- the three layouts, read back ------------------------------------------------------------------------


def test_ubfc_export_is_read_by_a_toolbox_style_reader_and_by_our_parser(store, repo, server, tmp_path) -> None:
    a = add_recording(store, server, "alice.avi", subject="S07", truth=pulse_csv())
    b = add_recording(store, server, "bob.avi", subject="P2", truth=bids_truth())
    c = add_recording(store, server, "carol.avi", subject="Carol", truth=pulse_csv(bpm=90))
    plan = build_plan(store, repo, ids(a, b, c), Layout.UBFC, now=NOW)
    root = unpack(zipped(store, plan), tmp_path)
    assert root.name == "pulsevault-ubfc-20261202-050000"
    sums = check_sums(root)
    assert sums["subject7/vid.avi"] == a.sha256 and sums["subject2/vid.avi"] == b.sha256

    subjects = {s.index: s for s in read_ubfc(root)}
    assert sorted(subjects) == ["subject2", "subject7", "subject8"]  # Carol: the next number after the highest
    assert subjects["subject7"].video.read_bytes() == store._client.get_object(
        Bucket=store.bucket, Key=a.s3_key)["Body"].read()
    assert len(subjects["subject7"].bvp) == 1000  # 20 s at 50 Hz
    assert len(subjects["subject2"].bvp) == 1850  # BIDS StartTime -1.5 s: samples before the first frame dropped
    for folder, bpm in (("subject7", PULSE_BPM), ("subject2", PULSE_BPM), ("subject8", 90.0)):
        truth = load_ground_truth(root / folder / "ground_truth.txt")
        assert truth.format == "ubfc_dataset2" and truth.kind is Kind.WAVEFORM
        assert hr_of(root / folder / "ground_truth.txt") == pytest.approx(bpm, abs=1.5)
        hr_line = np.array((root / folder / "ground_truth.txt").read_text().splitlines()[1].split(), dtype=float)
        assert np.median(hr_line) == pytest.approx(bpm, abs=1.5)

    mapping = {row["path"]: row for row in read_csv(root / "mapping.csv")}
    assert mapping["subject8"]["subject_id"] == "Carol" and mapping["subject8"]["record_id"] == c.id
    assert mapping["subject2"]["ground_truth"] == "rec_physio.tsv.gz"
    config = yaml.safe_load((root / "rppg-toolbox.yaml").read_text())
    assert config["TEST"]["DATA"]["DATASET"] == "UBFC-rPPG"
    assert config["TEST"]["DATA"]["DATA_PATH"] == root.name and config["TEST"]["DATA"]["FS"] == 30
    assert "ground_truth.txt" in (root / "README.md").read_text()


def test_bids_export_keeps_the_start_time_and_numbers_runs(store, repo, server, tmp_path) -> None:
    first = add_recording(store, server, "one.mp4", subject="sub 01", session="A", truth=bids_truth())
    second = add_recording(store, server, "two.mp4", subject="sub 01", session="A", truth=pulse_csv())
    other = add_recording(store, server, "three.avi", subject="02", truth=mean_hr_truth())
    bare = add_recording(store, server, "four.avi", subject="02", session="b")
    plan = build_plan(store, repo, ids(first, second, other, bare), Layout.BIDS, now=NOW)
    root = unpack(zipped(store, plan), tmp_path)
    check_sums(root)

    run1 = root / "sub-sub01/ses-A/sub-sub01_ses-A_run-1"
    assert (root / "sub-sub01/ses-A/sub-sub01_ses-A_run-1_video.mp4").is_file()
    truth = load_ground_truth(run1.with_name(run1.name + "_physio.tsv.gz"))
    assert truth.format == "bids_physio" and truth.fs == 100.0 and truth.start_s == -1.5
    sidecar = json.loads(run1.with_name(run1.name + "_physio.json").read_text())
    assert sidecar["Columns"] == ["cardiac"] and sidecar["StartTime"] == -1.5
    run2 = root / "sub-sub01/ses-A/sub-sub01_ses-A_run-2_physio.tsv.gz"
    assert load_ground_truth(run2).fs == pytest.approx(50.0) and hr_of(run2) == pytest.approx(PULSE_BPM, abs=1.5)
    # A mean heart rate has no waveform for a physio file; no session: no ses- level.
    assert sorted(p.name for p in (root / "sub-02").iterdir()) == ["ses-b", "sub-02_video.avi"]
    assert [p.name for p in (root / "sub-02/ses-b").iterdir()] == ["sub-02_ses-b_video.avi"]

    participants = read_csv(root / "participants.tsv", "\t")
    assert participants == [{"participant_id": "sub-02", "subject_id": "02"},
                            {"participant_id": "sub-sub01", "subject_id": "sub 01"}]
    description = json.loads((root / "dataset_description.json").read_text())
    assert description["Name"] == root.name and description["BIDSVersion"]
    assert {row["record_id"] for row in read_csv(root / "mapping.csv")} == {first.id, second.id, other.id, bare.id}


def test_plain_export_keeps_original_names_metadata_and_analysis(store, repo, server, tmp_path) -> None:
    analysis = {"method": "POS", "hr_bpm": 71.5, "snr_db": 6.0}
    a = add_recording(store, server, "take.avi", subject="S1", truth=bids_truth(), analysis=analysis)
    b = add_recording(store, server, "take.mp4", subject="S2")  # same stem: the id tells them apart
    plan = build_plan(store, repo, ids(a, b), Layout.PLAIN, now=NOW)
    root = unpack(zipped(store, plan), tmp_path)
    check_sums(root)
    folder_a, folder_b = f"take-{a.id[:8]}", f"take-{b.id[:8]}"
    assert (root / folder_a / "take.avi").is_file() and (root / folder_b / "take.mp4").is_file()
    assert load_ground_truth(root / folder_a / "rec_physio.tsv.gz").start_s == -1.5  # as attached, with sidecar
    assert json.loads((root / folder_a / "analysis.json").read_text()) == analysis
    rows = {row["id"]: row for row in read_csv(root / "metadata.csv")}
    assert rows[a.id]["path"] == f"{folder_a}/take.avi" and rows[a.id]["quick_look_hr_bpm"] == "71.5"
    assert rows[b.id]["subject_id"] == "S2" and rows[b.id]["sha256"] == b.sha256


def test_the_current_filter_exports_every_match_and_says_what_was_left_out(store, repo, server, tmp_path) -> None:
    kept = add_recording(store, server, "kept.avi", subject="1")
    failed = add_recording(store, server, "broken.avi", subject="2")
    server.mark_failed(failed.id, "the upload stopped")
    plan = build_plan(store, repo, Selection(query=ListQuery()), Layout.PLAIN, now=NOW)
    assert [o.name for o in plan.objects] == ["kept.avi"]
    assert plan.left_out == ("broken.avi: its upload is failed, so it has no stored recording.",)
    root = unpack(zipped(store, plan), tmp_path)
    assert "broken.avi" in (root / "README.md").read_text()
    assert kept.id in (root / "metadata.csv").read_text()


# --- refusals before anything is sent --------------------------------------------------------------------


def test_an_empty_selection_is_refused(store, repo, server) -> None:
    with pytest.raises(ExportRefused, match="Nothing to export"):
        build_plan(store, repo, Selection(query=ListQuery()), Layout.PLAIN)
    pending = add_recording(store, server, "x.avi", subject="1")
    server.mark_failed(pending.id, "stopped")
    with pytest.raises(ExportRefused, match="none of the selected recordings is stored"):
        build_plan(store, repo, ids(pending), Layout.PLAIN)


def test_ubfc_needs_a_pulse_waveform_for_every_recording(store, repo, server) -> None:
    with_truth = add_recording(store, server, "a.avi", subject="1", truth=pulse_csv())
    without = add_recording(store, server, "b.avi", subject="2")
    mean_only = add_recording(store, server, "c.avi", subject="3", truth=mean_hr_truth())
    with pytest.raises(ExportRefused, match="needs ground truth") as refused:
        build_plan(store, repo, ids(with_truth, without), Layout.UBFC)
    assert refused.value.problems == (
        "b.avi has no ground truth; UBFC-rPPG needs a ground_truth.txt for every subject. Attach one (select the "
        "recording, Ground truth), leave it out, or choose BIDS-style or Plain.",)
    with pytest.raises(ExportRefused, match=r"c\.avi: its ground truth is a mean heart rate only"):
        build_plan(store, repo, ids(with_truth, mean_only), Layout.UBFC)
    assert build_plan(store, repo, ids(with_truth, without, mean_only), Layout.BIDS).recording_count == 3


def test_subject_fields_that_collide_in_the_layout_are_all_named(store, repo, server) -> None:
    a = add_recording(store, server, "a.avi", subject="7", truth=pulse_csv())
    b = add_recording(store, server, "b.avi", subject="S07", truth=pulse_csv())
    c = add_recording(store, server, "c.avi", subject="S1", truth=pulse_csv())
    d = add_recording(store, server, "d.avi", subject="S1", truth=pulse_csv())
    e = add_recording(store, server, "e.avi", truth=pulse_csv())
    with pytest.raises(ExportRefused) as refused:
        build_plan(store, repo, ids(a, b, c, d, e), Layout.UBFC)
    problems = refused.value.problems
    assert any("'7' and 'S07' would all be subject7" in p for p in problems)
    assert any("Subject 'S1' has 2 recordings (c.avi, d.avi)" in p for p in problems)
    assert any(p.startswith("e.avi has no subject") for p in problems)
    assert len(problems) == 3

    f = add_recording(store, server, "f.avi", subject="S-1")
    g = add_recording(store, server, "g.avi", subject="S1", session="day 1")
    h = add_recording(store, server, "h.avi", subject="S1", session="day-1")
    with pytest.raises(ExportRefused) as refused:
        build_plan(store, repo, ids(c, f, g, h), Layout.BIDS)
    assert len(refused.value.problems) == 2
    assert "subjects 'S-1' and 'S1' would all be labelled 'S1'" in refused.value.problems[0]
    assert "sub-S1 sessions 'day 1' and 'day-1' would all be labelled 'day1'" in refused.value.problems[1]


def test_objects_changed_since_the_list_was_made_are_named(store, repo, server) -> None:
    gone = add_recording(store, server, "gone.avi", subject="1")
    resized = add_recording(store, server, "resized.avi", subject="2")
    resigned = add_recording(store, server, "resigned.avi", subject="3")
    fine = add_recording(store, server, "fine.avi", subject="4")
    store._client.delete_object(Bucket=store.bucket, Key=gone.s3_key)
    store._client.put_object(Bucket=store.bucket, Key=resized.s3_key, Body=b"shorter")
    store._client.put_object(Bucket=store.bucket, Key=resigned.s3_key, Body=b"x" * resigned.size_bytes,
                             Metadata={"sha256": "0" * 64})
    with pytest.raises(ExportRefused, match="changed in storage since the list was made") as refused:
        build_plan(store, repo, ids(gone, resized, resigned, fine), Layout.PLAIN)
    assert refused.value.problems == (
        "gone.avi is no longer in storage (deleted).",
        f"resized.avi is 7 bytes in storage but {resized.size_bytes:,} in its record.",
        "resigned.avi in storage carries another checksum than its record.",
    )


def test_a_plan_checked_again_names_an_object_replaced_after_it_was_made(store, repo, server) -> None:
    record = add_recording(store, server, "a.avi", subject="1")
    plan = build_plan(store, repo, ids(record), Layout.PLAIN)
    check_plan_unchanged(store, plan)
    store._client.put_object(Bucket=store.bucket, Key=record.s3_key, Body=b"y" * record.size_bytes)
    with pytest.raises(ExportRefused, match=r"a\.avi was replaced in storage since the export was prepared"):
        check_plan_unchanged(store, plan)


def test_a_members_export_of_a_study_holds_every_members_recordings_and_one_space_only(store, tmp_path) -> None:
    db = tmp_path / "lab.sqlite3"
    owner, member = (DemoAuth(db).sign_up(f"{who}@lab.test", "password-1234").session.user_id
                     for who in ("owner", "member"))
    owner_repo, member_repo = SqliteRepository(db, owner), SqliteRepository(db, member)
    study = owner_repo.create_study("Sleep", "").id
    owner_repo.add_member(study, "member@lab.test", Role.MEMBER)
    theirs, mine = (attach(store, server, store_recording(store, server, name, name.encode() * 99,
                                                          ResearchFields(subject_id=subject), study), pulse_csv())
                    for server, name, subject in ((SqliteServerRecords(db, owner), "night1.avi", "s1"),
                                                  (SqliteServerRecords(db, member), "night2.avi", "s2")))
    plan = build_plan(store, member_repo, Selection(query=ListQuery(study_id=study)), Layout.UBFC, now=NOW)
    assert plan.space == Space(member, study) and {o.key for o in plan.objects} >= {theirs.s3_key, mine.s3_key}
    root = unpack(zipped(store, plan), tmp_path / "out")
    assert check_sums(root) and len(read_ubfc(root)) == 2
    personal = add_recording(store, SqliteServerRecords(db, member), "own.avi", subject="s3")
    with pytest.raises(ExportRefused, match="different spaces"):
        build_plan(store, member_repo, ids(mine, personal), Layout.PLAIN, now=NOW)


def test_another_users_record_id_is_refused_by_name(store, repo, server) -> None:
    mine = add_recording(store, server, "mine.avi", subject="1")
    stranger = SqliteRepository(repo.db_path, "a" * 8 + "-0000-4000-8000-" + "0" * 12)
    with pytest.raises(ExportRefused, match="not there any more"):
        build_plan(store, stranger, ids(mine), Layout.PLAIN)


# --- delivery ------------------------------------------------------------------------------------------------


def test_a_set_over_the_zip_limit_is_a_manifest_with_links_and_the_fetch_script(store, repo, server) -> None:
    a = add_recording(store, server, "a.avi", subject="1", truth=pulse_csv())
    small = replace(SETTINGS, export_zip_max_bytes=a.size_bytes)  # the made files push it over
    tickets = ExportTickets()
    repo.set_consent(a.id, Consent.SHAREABLE, None)  # a manifest's links go out only for shareable recordings
    prepared = prepare_export(store, repo, tickets, small, ExportRequest(ids(a), Layout.UBFC), trail=trail_of(repo))
    assert prepared.delivery is Delivery.MANIFEST and prepared.download_url == "" and len(tickets) == 0
    with zipfile.ZipFile(BytesIO(prepared.manifest)) as zf:
        names = {n.split("/", 1)[1] for n in zf.namelist()}
        rows = read_csv_bytes(zf.read(f"{prepared.plan.root}/manifest.csv"))
    assert {"manifest.csv", "fetch.py", "FETCH.md", "SHA256SUMS", "README.md", "subject1/ground_truth.txt",
            "mapping.csv", "rppg-toolbox.yaml"} == names
    assert [(r["path"], int(r["size"]), r["sha256"]) for r in rows] == [("subject1/vid.avi", a.size_bytes, a.sha256)]
    assert "X-Amz-Expires=86400" in rows[0]["url"]  # the longest the settings allow, never longer


def read_csv_bytes(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


class NoLog:
    """A trail that cannot be written."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id

    def append(self, actor, *events) -> None:
        raise MetadataUnavailable("The demo database cannot be opened.")

    def entries(self, where):
        return []


def test_a_zip_export_gets_a_one_time_link(store, repo, server) -> None:
    a = add_recording(store, server, "a.avi", subject="1")
    tickets = ExportTickets()
    prepared = prepare_export(store, repo, tickets, Settings(mode="demo"), ExportRequest(ids(a), Layout.PLAIN),
                              trail=trail_of(repo))
    assert prepared.delivery is Delivery.ZIP and prepared.download_url.startswith("/pulsevault/export?ticket=")
    assert prepared.file_name == f"{prepared.plan.root}.zip" and "1 recording" in prepared.describe()
    ticket = prepared.download_url.split("=", 1)[1]
    assert tickets.claim(ticket, "someone-else") is None  # bound to its user, and not used up by a stranger
    assert tickets.claim(ticket, USER) == prepared.plan
    assert tickets.claim(ticket, USER) is None  # one time


def test_tickets_expire_and_a_user_holds_a_few_at_most(store, repo, server) -> None:
    now = [0.0]
    tickets = ExportTickets(ttl_s=60, clock=lambda: now[0])
    a = add_recording(store, server, "a.avi", subject="1")
    plan = build_plan(store, repo, ids(a), Layout.PLAIN)
    old = tickets.issue(plan)
    now[0] = 61.0
    assert tickets.claim(old, USER) is None
    issued = [tickets.issue(plan) for _ in range(7)]
    assert len(tickets) == 5 and tickets.claim(issued[0], USER) is None and tickets.claim(issued[-1], None) == plan


def test_bids_physio_is_deterministic(store, repo, server) -> None:
    a = add_recording(store, server, "a.avi", subject="1", truth=pulse_csv())
    first = build_plan(store, repo, ids(a), Layout.BIDS, now=NOW)
    again = build_plan(store, repo, ids(a), Layout.BIDS, now=NOW)
    assert first.made == again.made
    table = next(m for m in first.made if m.path.endswith("_physio.tsv.gz"))
    assert len(gzip.decompress(table.data).splitlines()) == 1000


# --- read-ahead ----------------------------------------------------------------------------------------------


def test_read_ahead_keeps_the_order_and_hands_on_an_error() -> None:
    assert list(read_ahead(iter([b"a", b"b", b"c"]), depth=1)) == [b"a", b"b", b"c"]

    def failing():
        yield b"a"
        raise ExportRefused("storage went away")

    with pytest.raises(ExportRefused, match="storage went away"):
        list(read_ahead(failing()))


def test_a_cancelled_download_stops_the_reader_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield b"x" * 1024
        finally:
            closed.set()

    chunks = read_ahead(endless(), depth=2)
    assert next(chunks) == b"x" * 1024
    chunks.close()  # what Starlette does when the browser goes away
    assert closed.wait(timeout=5)


# --- the audit trail and consent -----------------------------------------------------------------------------


def test_every_exported_recording_is_an_audit_entry_with_its_files(store, repo, server) -> None:
    twelve = add_recording(store, server, "twelve.avi", subject="12", truth=pulse_csv())
    other = add_recording(store, server, "other.avi", subject="13", truth=bids_truth())
    prepared = prepare_export(store, repo, ExportTickets(), SETTINGS, ExportRequest(ids(twelve, other), Layout.BIDS),
                              trail=trail_of(repo, "me@lab.test"))
    log = SqliteAuditLog(repo.db_path, USER)
    # "Who has seen subject 12's recordings": the subject filter finds the export like any playback.
    (entry,) = log.entries(AuditFilter(study_id=None, subject_id="12"))
    assert entry.action is AuditAction.EXPORT and entry.record_id == twelve.id and entry.actor_email == "me@lab.test"
    assert entry.detail["files"] == ["sub-12/sub-12_video.avi", "sub-12/sub-12_physio.tsv.gz",
                                     "sub-12/sub-12_physio.json"]
    assert entry.detail["layout"] == "bids" and entry.detail["delivery"] == "zip" and entry.detail["recordings"] == 2
    assert entry.detail["root"] == prepared.plan.root and "SHA256SUMS" in entry.detail["shared_files"]
    (also,) = log.entries(AuditFilter(study_id=None, record_id=other.id))
    assert also.detail["export_id"] == entry.detail["export_id"]  # one export, one id across its entries
    assert "bids zip: sub-12/sub-12_video.avi" in describe(entry)


def test_no_audit_entries_no_export(store, repo, server) -> None:
    a = add_recording(store, server, "a.avi", subject="1")
    tickets = ExportTickets()
    broken = AuditTrail(NoLog(USER), Actor(USER, "me@lab.test"))
    with pytest.raises(AuditUnavailable, match=r"Nothing was done.*\(exported\)"):
        prepare_export(store, repo, tickets, SETTINGS, ExportRequest(ids(a), Layout.PLAIN), trail=broken)
    assert len(tickets) == 0  # no link was handed out
    # A manifest is not made either (its links would be out before the entry).
    repo.set_consent(a.id, Consent.SHAREABLE, None)
    with pytest.raises(AuditUnavailable):
        prepare_export(store, repo, tickets, replace(SETTINGS, export_zip_max_bytes=1),
                       ExportRequest(ids(a), Layout.PLAIN), trail=broken)


def test_withdrawn_recordings_are_never_exported_and_say_why(store, repo, server, tmp_path) -> None:
    kept = add_recording(store, server, "kept.avi", subject="1")
    gone = add_recording(store, server, "gone.avi", subject="2")
    assert kept.consent is Consent.INTERNAL  # internal use only: a zip the exporter downloads holds it
    server.mark_withdrawn(gone.id, "consent withdrawn")
    plan = build_plan(store, repo, Selection(query=ListQuery()), Layout.PLAIN, now=NOW)
    assert [o.name for o in plan.objects] == ["kept.avi"]
    assert plan.left_out == ("gone.avi: its consent was withdrawn (it is being erased), so it is never exported.",)
    assert gone.id not in (unpack(zipped(store, plan), tmp_path) / "metadata.csv").read_text()
    with pytest.raises(ExportRefused, match="none of the selected recordings is stored") as refused:
        build_plan(store, repo, ids(gone), Layout.PLAIN)
    assert refused.value.problems == plan.left_out


def test_internal_recordings_stay_out_of_a_manifest_of_links_but_go_in_a_zip(store, repo, server) -> None:
    internal = add_recording(store, server, "internal.avi", subject="1")
    shareable = add_recording(store, server, "shareable.avi", subject="2")
    repo.set_consent(shareable.id, Consent.SHAREABLE, None)
    assert build_plan(store, repo, ids(internal, shareable), Layout.PLAIN).recording_count == 2  # a zip: both
    plan = build_plan(store, repo, ids(internal, shareable), Layout.PLAIN, zip_max_bytes=1)
    assert plan.delivery is Delivery.MANIFEST and [o.name for o in plan.objects] == ["shareable.avi"]
    (reason,) = plan.left_out
    assert reason.startswith("internal.avi is held for internal use only") and "manifest of links" in reason
    assert internal.id not in next(m for m in plan.made if m.path == "metadata.csv").data.decode()
    with pytest.raises(ExportRefused, match="Nothing of this export can go out as a manifest"):
        build_plan(store, repo, ids(internal), Layout.PLAIN, zip_max_bytes=1)


def test_a_studys_viewer_exports_a_zip_but_hands_out_no_manifest_of_links(store, tmp_path) -> None:
    db = tmp_path / "lab.sqlite3"
    owner, viewer = (DemoAuth(db).sign_up(f"{who}@lab.test", "password-1234").session.user_id
                     for who in ("owner", "viewer"))
    owner_repo, viewer_repo = SqliteRepository(db, owner), SqliteRepository(db, viewer)
    study = owner_repo.create_study("Sleep", "").id
    owner_repo.add_member(study, "viewer@lab.test", Role.VIEWER)
    record = store_recording(store, SqliteServerRecords(db, owner), "night.avi", b"night" * 99,
                             ResearchFields(subject_id="12"), study)
    owner_repo.set_consent(record.id, Consent.SHAREABLE, None)
    everything = Selection(query=ListQuery(study_id=study))
    prepared = prepare_export(store, viewer_repo, ExportTickets(), SETTINGS, ExportRequest(everything, Layout.PLAIN),
                              trail=trail_of(viewer_repo, "viewer@lab.test"))
    assert prepared.delivery is Delivery.ZIP and prepared.plan.space == Space(viewer, study)
    # The study's owners see the viewer's export when they ask about subject 12.
    (entry,) = SqliteAuditLog(db, owner).entries(AuditFilter(study_id=study, subject_id="12"))
    assert (entry.action, entry.actor_email, entry.study_id) == (AuditAction.EXPORT, "viewer@lab.test", study)
    with pytest.raises(ExportRefused, match="viewers of a study do not hand those out"):
        build_plan(store, viewer_repo, everything, Layout.PLAIN, zip_max_bytes=1)
    outsider = SqliteRepository(db, DemoAuth(db).sign_up("out@lab.test", "password-1234").session.user_id)
    with pytest.raises(ExportRefused, match="not there any more"):
        build_plan(store, outsider, ids(record), Layout.PLAIN)
