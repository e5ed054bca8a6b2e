"""AppTest of pages/files.py (My files) in demo mode: search, filters, paging, selection, the detail
panel, editing research fields, share links and deleting through the confirmation dialog.

Other app tests share the process's demo account, so every test adds its own records with a unique
token in their names and searches for it.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pandas as pd
import pytest
from botocore.config import Config
from streamlit.testing.v1 import AppTest

from components import state_keys
from components.text import literal
from lib import demo, pipeline, uploads
from lib.erasure import WITHDRAWING
from lib.errors import NotFound
from lib.keys import record_folder, record_keys
from lib.pipeline import Backends
from lib.records import (
    Consent,
    ErasureReason,
    FileRecord,
    ListQuery,
    NewRecord,
    ResearchFields,
    Status,
    VideoProperties,
)
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.settings import Settings
from lib.storage import ObjectStore
from lib.units import MISSING
from tests.support import videos
from tests.support.apptest import SEED_TIMEOUT_S, select_rows, signed_in_app

LOSSLESS = VideoProperties(duration_s=10.0, fps=30.0, width=640, height=480, frame_count=300, codec="FFV1",
                           lossless=True, browser_playable=False)
LOSSY = VideoProperties(duration_s=5.0, fps=25.0, width=320, height=240, frame_count=125, codec="h264",
                        lossless=False, browser_playable=True)


# --- helpers -------------------------------------------------------------------------------------------


def files_page() -> AppTest:
    """A signed-in demo session on My files."""
    at = signed_in_app("pages/files.py")
    # The sample is seeded by a background thread; one still running at interpreter exit aborts the process.
    demo.seeding_done(timeout_s=SEED_TIMEOUT_S)
    return at


@pytest.fixture
def at() -> AppTest:
    return files_page()


@pytest.fixture
def token() -> str:
    return "t" + uuid.uuid4().hex[:10]


def backends() -> demo.DemoBackends:
    running = demo._running
    assert running is not None, "the app starts the demo backends on its first run"
    return running


def demo_repo() -> SqliteRepository:
    return SqliteRepository(backends().db_path, backends().user_id)


def demo_server() -> SqliteServerRecords:
    return SqliteServerRecords(backends().db_path, backends().user_id)


def s3():
    s3 = backends().s3
    return boto3.client("s3", endpoint_url=s3.endpoint_url, region_name=s3.region,
                        aws_access_key_id=s3.access_key_id, aws_secret_access_key=s3.secret_access_key,
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def add(name: str, *, status: Status = Status.READY, video: VideoProperties = LOSSLESS,
        research: ResearchFields | None = None, error: str = "Upload interrupted: network down",
        objects: bool = False) -> FileRecord:
    server = demo_server()
    record_id = str(uuid.uuid4())
    keys = record_keys(server.user_id, record_id, "avi", datetime.now(UTC))
    record = server.reserve(NewRecord(
        id=record_id, s3_key=keys.original, bucket=backends().s3.bucket, original_name=name,
        content_type="video/x-msvideo", size_bytes=1_000, research=research or ResearchFields(),
        thumbnail_key=keys.thumbnail, preview_key=keys.preview, video=video,
    ), quota_bytes=10**15)
    if objects:
        for key in (keys.original, keys.thumbnail, keys.preview):
            s3().put_object(Bucket=backends().s3.bucket, Key=key, Body=b"bytes")
    if status is Status.READY:
        return server.mark_ready(record.id, size_bytes=1_000, sha256=uuid.uuid4().hex * 2, video=video,
                                 thumbnail_key=keys.thumbnail, preview_key=keys.preview)
    if status is Status.FAILED:
        return server.mark_failed(record.id, error)
    return record


def search(at: AppTest, text: str) -> AppTest:
    at.text_input(key="pv_user_files_search").input(text)
    return run(at)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def names(at: AppTest) -> list[str]:
    """The listed recordings' names (the list is the table with a name column; the erased ones have none)."""
    listed = [d.value for d in at.dataframe if "name" in d.value.columns]
    return list(listed[0]["name"]) if listed else []


def select(at: AppTest, *rows: int) -> AppTest:
    return select_rows(at, *rows)


def click(at: AppTest, label: str, key: str | None = None) -> AppTest:
    next(b for b in at.button if b.label == label and (key is None or b.key == key)).click()
    return run(at)


def gone(record: FileRecord) -> bool:
    try:
        demo_repo().get(record.id)
    except NotFound:
        return True
    return False


# --- listing, search, filters, paging ---------------------------------------------------------------------


def test_search_lists_matches_newest_first_with_the_columns(at: AppTest, token: str) -> None:
    older = add(f"{token} older.avi", research=ResearchFields(subject_id="S01", tags=("rest",)))
    newer = add(f"{token} newer.avi")
    add("unrelated.avi")
    search(at, token)
    assert names(at) == [newer.original_name, older.original_name]
    frame = at.dataframe[0].value
    assert {"thumbnail", "name", "subject", "session", "tags", "duration", "resolution", "fps", "size",
            "lossless", "hr", "status", "uploaded"} <= set(frame.columns)
    row = frame.iloc[1]
    assert (row["subject"], list(row["tags"]), row["resolution"]) == ("S01", ["rest"], "640×480")
    assert (list(row["status"]), list(row["lossless"])) == (["ready"], ["lossless"])
    assert "/thumb.jpg" in row["thumbnail"] and "X-Amz-Signature" in row["thumbnail"]
    assert pd.isna(row["hr"]) and at.dataframe[0].proto.placeholder == MISSING  # "—", never "None" (issue 21)


def test_search_covers_subject_session_and_notes(at: AppTest, token: str) -> None:
    add("a.avi", research=ResearchFields(subject_id=f"{token}-subj"))
    add("b.avi", research=ResearchFields(session_label=f"{token}-sess"))
    add("c.avi", research=ResearchFields(notes=f"bright room {token}-note"))
    assert sorted(names(search(at, token))) == ["a.avi", "b.avi", "c.avi"]
    assert names(search(at, f"{token}-note")) == ["c.avi"]


def test_status_filter_shows_failed_uploads_with_their_reason(at: AppTest, token: str) -> None:
    add(f"{token} good.avi")
    add(f"{token} broken.avi", status=Status.FAILED, error="The storage service is busy")
    search(at, token)
    assert any("failed or did not finish" in w.value for w in at.warning)
    at.multiselect(key="pv_user_files_status").select(Status.FAILED)
    run(at)
    assert names(at) == [f"{token} broken.avi"]
    assert at.dataframe[0].value.iloc[0]["problem"] == "The storage service is busy"


def test_tag_lossless_and_date_filters(at: AppTest, token: str) -> None:
    add(f"{token} a.avi", research=ResearchFields(tags=("glasses", "daylight")))
    add(f"{token} b.avi", research=ResearchFields(tags=("daylight",)), video=LOSSY)
    search(at, token)
    at.multiselect(key="pv_user_files_tags").select("glasses")
    assert names(run(at)) == [f"{token} a.avi"]
    at.multiselect(key="pv_user_files_tags").unselect("glasses")
    at.selectbox(key="pv_user_files_lossless").select("Lossy only")
    assert names(run(at)) == [f"{token} b.avi"]
    at.selectbox(key="pv_user_files_lossless").select("Any")
    today = datetime.now(UTC).date()
    at.date_input(key="pv_user_files_dates").set_value((today - timedelta(days=3), today - timedelta(days=1)))
    run(at)
    assert names(at) == [] and any("No recordings match" in i.value for i in at.info)
    at.date_input(key="pv_user_files_dates").set_value((today, today))
    assert len(names(run(at))) == 2


def test_paging_fetches_one_page_at_a_time(at: AppTest, token: str) -> None:
    for i in range(30):
        add(f"{token} {i:02d}.avi")
    search(at, token)
    at.selectbox(key="pv_user_files_page_size").select(25)
    run(at)
    assert len(names(at)) == 25 and names(at)[0] == f"{token} 29.avi"
    at.number_input(key="pv_user_files_page").set_value(2)
    run(at)
    assert names(at) == [f"{token} {i:02d}.avi" for i in range(4, -1, -1)]
    assert any("26–30 of 30" in c.value for c in at.caption)


# --- selection and the detail panel ------------------------------------------------------------------------


def test_selecting_a_row_opens_its_detail_panel(at: AppTest, token: str) -> None:
    record = add(f"{token} pick me.avi", objects=True)
    search(at, token)
    assert not at.get("video")
    select(at, 0)
    assert any(s.value == literal(record.original_name) for s in at.subheader)
    videos = at.get("video")
    assert len(videos) == 1
    assert "/preview.mp4" in videos[0].proto.url
    download = next(b for b in at.get("link_button") if b.proto.label == "Download original")
    params = parse_qs(urlsplit(download.proto.url).query)
    assert params["response-content-disposition"][0].startswith("attachment")
    assert "pick%20me.avi" in download.proto.url
    properties = at.dataframe[1].value
    assert dict(zip(properties["Property"], properties["Value"], strict=True))["Record id"] == record.id
    assert any(b.label == "Re-analyse" for b in at.button)


def test_the_selection_follows_recordings_through_a_sort_and_a_search(at: AppTest, token: str) -> None:
    """Issue 21, item 4: after a sort or a search the selection stays on the chosen recording, not on
    whatever row now sits where it was, and a recording the search hides is no longer selected."""
    a, b, c = (add(f"{token} {n}.avi") for n in "abc")
    search(at, token)
    assert names(at) == [c.original_name, b.original_name, a.original_name]  # newest first
    select(at, 0)
    assert at.session_state[state_keys.FILES_SELECTED] == (c.id,)
    at.selectbox(key=state_keys.FILES_SORT).select("Name")
    at.selectbox(key=state_keys.FILES_ORDER).select("Ascending")
    run(at)
    assert names(at) == [a.original_name, b.original_name, c.original_name]
    assert at.session_state[state_keys.FILES_SELECTED] == (c.id,)  # still c, now the last row
    assert [s.value for s in at.subheader if token in s.value] == [c.original_name]  # its detail, not a's
    assert any(t.value == "1 selected" for t in at.caption)

    search(at, f"{token} a")  # c leaves the screen: nothing the researcher cannot see stays selected
    assert names(at) == [a.original_name]
    assert at.session_state[state_keys.FILES_SELECTED] == ()
    assert not [s for s in at.subheader if token in s.value]
    search(at, token)
    assert at.session_state[state_keys.FILES_SELECTED] == ()


def test_several_selected_rows_open_no_detail_but_can_be_deleted(at: AppTest, token: str) -> None:
    records = [add(f"{token} {i}.avi", objects=True) for i in range(3)]
    search(at, token)
    select(at, 0, 2)
    assert not at.get("video")
    click(at, "Delete selected (2)")
    assert any("Delete these 2 recordings?" in m.value for m in at.markdown)
    click(at, "Delete", key="pv_user_files_dialog_confirm")
    assert names(at) == [records[1].original_name]
    assert gone(records[0]) and gone(records[2]) and not gone(records[1])
    assert any("Deleted 2 recordings." in s.value for s in at.success)
    listed = s3().list_objects_v2(Bucket=backends().s3.bucket, Prefix=records[0].s3_key.rsplit("/", 1)[0])
    assert listed.get("KeyCount", 0) == 0


def test_edit_research_fields(at: AppTest, token: str) -> None:
    record = add(f"{token} edit.avi", research=ResearchFields(subject_id="S01"))
    select(search(at, token), 0)
    at.text_input(key=f"pv_user_files_subject_{record.id}").input("S02")
    at.text_input(key=f"pv_user_files_tags_{record.id}").input("rest, glasses")
    at.text_area(key=f"pv_user_files_notes_{record.id}").input("re-labelled")
    click(at, "Save")
    saved = demo_repo().get(record.id).research
    assert (saved.subject_id, saved.tags, saved.notes) == ("S02", ("rest", "glasses"), "re-labelled")
    assert any("saved" in s.value for s in at.success)
    assert at.dataframe[0].value.iloc[0]["subject"] == "S02"


def test_delete_asks_first_and_cancel_keeps_the_recording(at: AppTest, token: str) -> None:
    record = add(f"{token} keep or not.avi", objects=True)
    select(search(at, token), 0)
    click(at, "Delete", key=f"pv_user_files_delete_{record.id}")
    assert any("Delete this recording?" in m.value for m in at.markdown)
    assert not gone(record)
    click(at, "Cancel")
    assert not gone(record) and names(at) == [record.original_name]
    assert not any("Delete this recording?" in m.value for m in at.markdown)
    click(at, "Delete", key=f"pv_user_files_delete_{record.id}")
    click(at, "Delete", key="pv_user_files_dialog_confirm")
    assert gone(record) and names(at) == []
    assert not s3().list_objects_v2(Bucket=backends().s3.bucket, Prefix=record.s3_key).get("KeyCount", 0)


def test_share_link_needs_shareable_consent_and_uses_the_picked_expiry(at: AppTest, token: str) -> None:
    record = add(f"{token} share.avi")
    select(search(at, token), 0)
    assert any("internal use only" in c.value for c in at.caption)
    click(at, "Create link")  # not hidden: the library refuses it, in words
    assert any("held for internal use only, so no share link is made" in e.value for e in at.error)
    assert not at.code
    at.selectbox(key=state_keys.files_record("consent_state", record.id)).set_value(Consent.SHAREABLE)
    at.date_input(key=state_keys.files_record("consent_date", record.id)).set_value(date(2024, 5, 2))
    click(at, "Save consent")
    saved = demo_repo().get(record.id)
    assert (saved.consent, saved.consent_date) == (Consent.SHAREABLE, date(2024, 5, 2))
    assert any("Consent of" in s.value for s in at.success)
    at.select_slider(key=f"pv_user_files_share_expiry_{record.id}").set_value(60)
    click(at, "Create link")
    url = at.code[0].value
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["60"]
    assert any("until" in c.value and "UTC" in c.value for c in at.caption)


def _under(record: FileRecord) -> list[str]:
    listed = s3().list_objects_v2(Bucket=backends().s3.bucket, Prefix=record_folder(record.s3_key))
    return [o["Key"] for o in listed.get("Contents", [])]


def test_withdraw_erases_the_recording_after_a_confirmation_and_keeps_a_tombstone(at: AppTest, token: str) -> None:
    record = add(f"{token} withdraw.avi", objects=True, research=ResearchFields(subject_id=f"{token}-S12"))
    assert len(_under(record)) == 3
    select(search(at, token), 0)
    click(at, "Withdraw consent and erase…")
    assert any("cannot be undone" in m.value for m in at.markdown)
    click(at, "Cancel", key=state_keys.FILES_WITHDRAW_CANCEL)
    assert not gone(record) and len(_under(record)) == 3
    click(at, "Withdraw consent and erase…")
    click(at, "Withdraw and erase", key=state_keys.FILES_WITHDRAW_CONFIRM)
    assert gone(record) and _under(record) == [] and names(at) == []
    assert any("is erased: nothing of it is left in storage" in s.value for s in at.success)
    [stone] = [t for t in demo_repo().tombstones(None) if t.id == record.id]
    assert (stone.subject_id, stone.reason) == (f"{token}-S12", ErasureReason.WITHDRAWN)
    search(at, f"{token}-nothing")  # the erased recordings' expander is drawn below the list, matches or not
    erased = next(d.value for d in at.dataframe if "Why" in d.value.columns)
    assert f"{token}-S12" in list(erased["Subject"])


def test_an_unfinished_withdrawal_says_so_and_finishes_with_withdraw_again(at: AppTest, token: str) -> None:
    record = add(f"{token} half.avi", objects=True)
    demo_server().mark_withdrawn(record.id, WITHDRAWING)  # as an erasure interrupted before the bucket emptied
    select(search(at, token), 0)
    assert any("erasure did not finish" in e.value for e in at.error)
    assert not [b for b in at.button if b.label in ("Discard", "Create link")]
    click(at, "Withdraw again")
    click(at, "Withdraw and erase", key=state_keys.FILES_WITHDRAW_CONFIRM)
    assert gone(record) and _under(record) == []


def test_failed_upload_can_be_discarded(at: AppTest, token: str) -> None:
    record = add(f"{token} failed.avi", status=Status.FAILED, error="The upload was interrupted.")
    select(search(at, token), 0)
    assert any("The upload was interrupted." in e.value for e in at.error)
    assert not at.get("video")
    click(at, "Discard")
    click(at, "Delete", key="pv_user_files_dialog_confirm")
    assert gone(record)


def test_another_users_record_never_appears(at: AppTest, token: str) -> None:
    other = SqliteServerRecords(backends().db_path, str(uuid.uuid4()))
    record_id = str(uuid.uuid4())
    keys = record_keys(other.user_id, record_id, "avi", datetime.now(UTC))
    other.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=backends().s3.bucket,
                            original_name=f"{token} theirs.avi", content_type="video/x-msvideo",
                            size_bytes=1), quota_bytes=10**15)
    assert names(search(at, token)) == []


def test_sort_by_name_ascending_in_the_database(at: AppTest, token: str) -> None:
    for name in ("b", "c", "a"):
        add(f"{token} {name}.avi")
    search(at, token)
    at.selectbox(key="pv_user_files_sort").select("Name")
    at.selectbox(key="pv_user_files_order").select("Ascending")
    assert names(run(at)) == [f"{token} {n}.avi" for n in "abc"]


def test_retry_uploads_the_local_copy_kept_in_this_session(at: AppTest, token: str, tmp_path: Path) -> None:
    research = ResearchFields(subject_id="S09", tags=("retry",))
    failed = add(f"{token} retry.avi", status=Status.FAILED, error="Network down", research=research)
    select(search(at, token), 0)
    assert not any(b.label == "Retry" for b in at.button)
    assert any("local copy is not in this session" in c.value for c in at.caption)

    clip = videos.opencv_video(tmp_path, "mjpg", frames=30)
    assert clip is not None
    prepared = pipeline.check_recording(clip, f"{token} retry.avi", max_bytes=Settings(mode="demo").max_upload_bytes,
                                        workdir=tmp_path / "work", analyse=False)
    # The job the Upload page left after an attempt that wrote the failed row (its id) and failed.
    job = replace(uploads.local_job("file-1", f"{token} retry.avi", prepared.size_bytes, prepared.path),
                  duplicate_allowed=True)  # other tests store the same generated clip
    job = replace(job.checked(prepared), attempt_id=failed.id).upload_failed("Network down")
    at.session_state[state_keys.UPLOAD_JOBS] = {job.id: job}
    run(at)
    click(at, "Retry")
    assert any("is stored and ready" in s.value for s in at.success)
    assert gone(failed)  # the job's new attempt replaced the failed row
    stored = demo_repo().list(ListQuery(text=token)).records
    assert [(r.status, r.research) for r in stored] == [(Status.READY, research)]
    after = at.session_state[state_keys.UPLOAD_JOBS]["file-1"]
    assert after.status is uploads.JobStatus.READY and after.record.id == stored[0].id


def test_reanalyse_saves_a_new_summary(at: AppTest, token: str, tmp_path: Path) -> None:
    clip = videos.opencv_video(tmp_path, "mjpg", frames=30)
    assert clip is not None
    record = pipeline.process_upload(clip, f"{token} clip.avi", ResearchFields(),
                                     Backends(Settings(mode="demo", s3=backends().s3), ObjectStore(backends().s3),
                                              demo_repo(), demo_server()),
                                     analyse=False, allow_duplicate=True)  # other tests store the same clip
    assert record.analysis is None
    select(search(at, token), 0)
    assert any("No quick-look pulse analysis" in i.value for i in at.info)
    at.selectbox(key=f"pv_user_files_method_{record.id}").select("GREEN")
    click(at, "Re-analyse")
    assert any("re-analysed (GREEN)" in s.value for s in at.success)
    saved = demo_repo().get(record.id).analysis
    assert saved is not None and saved["method"] == "GREEN" and saved["frames_analysed"] == 30
    assert any(m.label == "Frames analysed" for m in at.metric)
    every = next(d.value for d in at.dataframe if "Method" in d.value.columns and "SNR (dB)" in d.value.columns)
    assert list(every["Method"]) == ["POS", "CHROM", "GREEN (headline)"]  # every method from the one decode
