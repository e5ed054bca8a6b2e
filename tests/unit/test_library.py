"""lib/library.py with moto in-process and a SQLite repository: what is signed, CSV, delete, re-analyse."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from lib import library
from lib.errors import AccessDenied, NotFound, StorageUnavailable, ValidationError
from lib.keys import record_keys
from lib.library import (
    DELETING,
    LinkCache,
    SignedUrl,
    can_discard,
    delete_records,
    download_url,
    export_csv,
    playback_url,
    records_csv,
    share_expiry_options,
    share_link,
    thumbnail_urls,
)
from lib.pipeline import Step
from lib.records import (
    Consent,
    FileRecord,
    GroundTruthFile,
    ListQuery,
    NewRecord,
    ResearchFields,
    Status,
    VideoProperties,
)
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.rppg import AnalysisSummary
from lib.storage import DeleteResult, ObjectStore
from tests.support.audit import trail_of
from tests.support.checks import reanalyse_here
from tests.support.unit_world import BUCKET, SETTINGS

OTHER = "9f1e2d3c-4b5a-4968-8776-655443322110"
VIDEO = VideoProperties(duration_s=12.5, fps=30.0, width=640, height=480, frame_count=375, codec="FFV1",
                        lossless=True, browser_playable=False)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def add_record(repo: SqliteRepository, store: ObjectStore | None = None, *, name: str = "rec.avi",
               preview: bool = True, ready: bool = True, research: ResearchFields | None = None,
               content_type: str = "video/x-msvideo") -> FileRecord:
    """A ready record (with its objects in the bucket when a store is given), written as the server does."""
    server = SqliteServerRecords(repo.db_path, repo.user_id)
    record_id = str(uuid.uuid4())
    keys = record_keys(repo.user_id, record_id, "avi", datetime.now(UTC))
    record = server.reserve(NewRecord(
        id=record_id, s3_key=keys.original, bucket=BUCKET, original_name=name, content_type=content_type,
        size_bytes=5, research=research or ResearchFields(), thumbnail_key=keys.thumbnail,
        preview_key=keys.preview if preview else None, video=VIDEO,
    ), quota_bytes=10**12)
    if store is not None:
        for key in (keys.original, keys.thumbnail, *([keys.preview] if preview else [])):
            store._client.put_object(Bucket=BUCKET, Key=key, Body=b"bytes")
    if not ready:
        return record
    return server.mark_ready(record.id, size_bytes=5, sha256="ab" * 32, video=VIDEO,
                             thumbnail_key=record.thumbnail_key, preview_key=record.preview_key)


def keys_in_bucket(store: ObjectStore) -> set[str]:
    return {o.key for o in store.iter_all_objects()}


# --- links -------------------------------------------------------------------------------------------


def test_playback_prefers_the_preview_and_plays_inline(store, repo) -> None:
    record = add_record(repo)
    link = playback_url(store, repo, record.id, trail=trail_of(repo))
    assert urlsplit(link.url).path.endswith("/preview.mp4")
    assert query(link.url)["response-content-type"] == "video/mp4" == link.content_type
    assert "response-content-disposition" not in query(link.url)
    assert query(link.url)["X-Amz-Expires"] == "900" == str(link.expires_s)
    assert abs((link.expires_at - datetime.now(UTC)).total_seconds() - 900) < 5


def test_playback_without_preview_is_the_original(store, repo) -> None:
    record = add_record(repo, preview=False)
    link = playback_url(store, repo, record.id, trail=trail_of(repo))
    assert urlsplit(link.url).path.endswith("/original.avi")
    assert query(link.url)["response-content-type"] == "video/x-msvideo"


def test_the_served_type_comes_from_the_key_never_from_the_row(store, repo) -> None:
    """Issue 14, attack 2: a row claiming text/html (an MP4+HTML polyglot) is still served as the video its
    extension says, so the player URL never runs a page from the bucket's origin."""
    record = add_record(repo, preview=False, content_type="text/html")
    trail = trail_of(repo)
    for link in (playback_url(store, repo, record.id, trail=trail), download_url(store, repo, record.id, trail=trail)):
        assert query(link.url)["response-content-type"] == "video/x-msvideo"
        assert "html" not in link.url


@pytest.mark.parametrize(("key", "served"), [
    ("recordings/u/2024/01/r/original.mp4", ("video/mp4", True)),
    ("recordings/u/2024/01/r/original.MKV", ("video/x-matroska", True)),
    ("recordings/u/2024/01/r/thumb.jpg", ("image/jpeg", True)),
    ("recordings/u/2024/01/r/ground_truth.csv", ("text/csv", False)),
    ("recordings/u/2024/01/r/original.html", ("application/octet-stream", False)),
    ("recordings/u/2024/01/r/original", ("application/octet-stream", False)),
])
def test_only_video_and_image_types_are_ever_inline(key: str, served: tuple[str, bool]) -> None:
    from lib.media import served_as

    assert served_as(key) == served


def test_download_is_an_attachment_with_the_original_name(store, repo) -> None:
    record = add_record(repo, name="Sitzung 3 – Müller.avi")
    params = query(download_url(store, repo, record.id, trail=trail_of(repo)).url)
    assert urlsplit(download_url(store, repo, record.id, trail=trail_of(repo)).url).path.endswith("/original.avi")
    disposition = unquote(params["response-content-disposition"])
    assert disposition.startswith('attachment; filename="Sitzung 3 Muller.avi"')
    assert "Sitzung%203%20%E2%80%93%20M%C3%BCller.avi" in params["response-content-disposition"]


def test_unfinished_records_get_no_download_and_no_thumbnail(store, repo) -> None:
    record = add_record(repo, ready=False)
    assert thumbnail_urls(store, repo, [record.id]) == {record.id: None}
    with pytest.raises(ValidationError):
        download_url(store, repo, record.id, trail=trail_of(repo))


@pytest.mark.parametrize(("asked", "given"), [(None, 900), (1, 60), (59, 60), (7_200, 7_200), (10**7, 86_400)])
def test_share_link_expiry_is_clamped_to_the_bounds(store, repo, asked, given) -> None:
    record = add_record(repo)
    repo.set_consent(record.id, Consent.SHAREABLE, None)  # internal recordings are never shared (test_consent.py)
    link = share_link(store, repo, record.id, asked, SETTINGS, trail=trail_of(repo))
    assert query(link.url)["X-Amz-Expires"] == str(given) == str(link.expires_s)
    assert query(link.url)["response-content-disposition"].startswith("attachment")


def test_share_expiry_options_are_within_bounds_and_hold_the_default() -> None:
    options = share_expiry_options(replace(SETTINGS, presign_expiry_s=1_234))
    assert options == tuple(sorted(options))
    assert 1_234 in options and options[0] == 60 and options[-1] == 86_400


def test_another_users_record_is_refused_before_signing(store, repo, server, tmp_path) -> None:
    """Issue 14, attack 7: ownership comes from the session's repository; another user's record id is
    re-read through it and does not exist, whatever record object claims it."""
    theirs = add_record(SqliteRepository(tmp_path / "demo.db", OTHER), store)
    for sign in (playback_url, download_url):
        with pytest.raises(NotFound):
            sign(store, repo, theirs.id, trail=trail_of(repo))
    with pytest.raises(NotFound):
        share_link(store, repo, theirs.id, 60, SETTINGS, trail=trail_of(repo))
    assert thumbnail_urls(store, repo, [theirs.id]) == {theirs.id: None}
    report = delete_records(store, repo, server, [theirs.id], trail=trail_of(repo))
    assert report.deleted == () and "does not exist" in report.failed[0].reason
    with pytest.raises(NotFound):
        reanalyse_here(store, repo, server, theirs.id)


def test_a_repository_and_server_records_of_different_users_are_refused(store, repo, tmp_path) -> None:
    record = add_record(repo, store)
    someone_else = SqliteServerRecords(repo.db_path, OTHER)
    report = delete_records(store, repo, someone_else, [record.id], trail=trail_of(repo))
    assert report.deleted == () and "another session" in report.failed[0].reason
    with pytest.raises(AccessDenied):
        reanalyse_here(store, repo, someone_else, record.id)
    assert repo.get(record.id).status is Status.READY


def test_thumbnail_urls_only_for_the_rows_given(store, repo) -> None:
    records = [add_record(repo) for _ in range(3)]
    cache = LinkCache()
    urls = thumbnail_urls(store, repo, [r.id for r in records[:2]], cache=cache)
    assert set(urls) == {records[0].id, records[1].id}
    assert all(u and "/thumb.jpg" in u for u in urls.values())
    assert thumbnail_urls(store, repo, [r.id for r in records[:2]], cache=cache) == urls  # reused, not re-signed
    cache.forget(records[0].id)  # a move changed its keys
    assert cache.peek(("thumb", repo.user_id, records[0].id)) is None
    assert cache.peek(("thumb", repo.user_id, records[1].id)).url == urls[records[1].id]


def test_link_cache_reuses_until_half_life_and_is_bounded() -> None:
    cache = LinkCache(max_entries=2)
    made: list[int] = []

    def make(seconds: int = 3_600, age_s: int = 0) -> SignedUrl:
        made.append(1)
        return SignedUrl(f"https://x/{len(made)}", datetime.now(UTC) + timedelta(seconds=seconds - age_s), seconds,
                         "video/mp4")

    first = cache.get(("a",), make)
    assert cache.get(("a",), make) is first and len(made) == 1
    cache.get(("old",), lambda: make(age_s=3_000))  # less than half its life left: not reused
    assert cache.get(("old",), make) is not None and len(made) == 3
    cache.get(("c",), make)
    assert len(cache) == 2
    assert "https" not in repr(cache)


# --- CSV -------------------------------------------------------------------------------------------


def test_records_csv_has_a_header_and_one_row_per_record(repo, server) -> None:
    research = ResearchFields(subject_id="S07", session_label="baseline", notes='quiet, "cool" room',
                              tags=("rest", "lab-a"))
    record = add_record(repo, name="Müller, take 2.avi", research=research)
    server.set_analysis(record.id, {"method": "POS", "hr_bpm": 71.9, "snr_db": 3.2})
    rows = list(csv.DictReader(io.StringIO(records_csv([repo.get(record.id)]).decode("utf-8"))))
    assert len(rows) == 1
    row = rows[0]
    assert (row["original_name"], row["subject_id"], row["tags"], row["notes"]) == (
        "Müller, take 2.avi", "S07", "rest;lab-a", 'quiet, "cool" room')
    assert (row["quick_look_hr_bpm"], row["lossless"], row["status"], row["width"]) == ("71.9", "True", "ready",
                                                                                        "640")


def test_export_csv_covers_every_page_of_the_filtered_list(repo, monkeypatch) -> None:
    monkeypatch.setattr(library, "MAX_PAGE_SIZE", 2)
    for i in range(5):
        add_record(repo, name=f"keep {i}.avi")
    add_record(repo, name="other.avi")
    text = export_csv(repo, ListQuery(text="keep", page=3, page_size=1), trail=trail_of(repo)).decode()
    names = sorted(row["original_name"] for row in csv.DictReader(io.StringIO(text)))
    assert names == [f"keep {i}.avi" for i in range(5)]


# --- delete ----------------------------------------------------------------------------------------


def test_delete_removes_every_object_and_then_the_row(store, repo, server) -> None:
    record = add_record(repo, store)
    gt_key = record.s3_key.replace("original.avi", "ground_truth.csv")
    store._client.put_object(Bucket=BUCKET, Key=gt_key, Body=b"t,v")
    server.set_ground_truth(record.id, GroundTruthFile(gt_key, "pulse.csv", 3))
    stray = record.s3_key.replace("original.avi", "leftover.part")
    store._client.put_object(Bucket=BUCKET, Key=stray, Body=b"x")
    keep = add_record(repo, store)
    report = delete_records(store, repo, server, [record.id], trail=trail_of(repo))
    assert report.ok and report.deleted == (record.id,) and report.summary() == "Deleted 1 recording."
    assert keys_in_bucket(store) == {k for k in (keep.s3_key, keep.thumbnail_key, keep.preview_key) if k}
    with pytest.raises(NotFound):
        repo.get(record.id)


def test_delete_many_reports_each_and_refuses_other_users_ids(store, repo, server, tmp_path) -> None:
    other_repo = SqliteRepository(tmp_path / "demo.db", OTHER)
    theirs = add_record(other_repo, store)
    mine = [add_record(repo, store) for _ in range(2)]
    progress: list[tuple[int, int]] = []
    report = delete_records(store, repo, server, [mine[0].id, theirs.id, mine[1].id, "not-a-uuid"],
                            progress=lambda done, total: progress.append((done, total)), trail=trail_of(repo))
    assert set(report.deleted) == {mine[0].id, mine[1].id}
    assert [f.record_id for f in report.failed] == [theirs.id, "not-a-uuid"]
    assert all("does not exist" in f.reason for f in report.failed)
    assert progress[-1] == (4, 4)
    assert other_repo.get(theirs.id).status is Status.READY  # untouched, objects too
    assert {theirs.s3_key, theirs.thumbnail_key} <= keys_in_bucket(store)


def test_a_failed_object_delete_leaves_a_failed_row_never_orphans(store, repo, server, monkeypatch) -> None:
    record = add_record(repo, store)
    monkeypatch.setattr(ObjectStore, "delete", lambda self, keys, *, owner: DeleteResult(
        deleted=(), errors=tuple((k, "The storage credentials are not allowed to delete") for k in keys)))
    report = delete_records(store, repo, server, [record.id], trail=trail_of(repo))
    assert not report.ok and "could not be removed" in report.failed[0].reason
    row = repo.get(record.id)
    assert row.status is Status.FAILED and row.error.startswith(DELETING)
    assert row.s3_key in keys_in_bucket(store)  # a row still points at the bytes: reconciliation can see both


def test_unreachable_storage_leaves_the_row_failed_and_reports_it(store, repo, server, monkeypatch) -> None:
    record = add_record(repo, store)

    def down(self, keys, *, owner):
        raise StorageUnavailable("Could not reach the storage service to delete the files.")

    monkeypatch.setattr(ObjectStore, "delete", down)
    report = delete_records(store, repo, server, [record.id], trail=trail_of(repo))
    assert not report.ok and "Could not reach" in report.failed[0].reason
    assert repo.get(record.id).status is Status.FAILED
    assert "Could not reach" in repo.get(record.id).error


def test_failed_row_delete_leaves_no_objects(store, repo, server, monkeypatch) -> None:
    record = add_record(repo, store)

    def refuse(self, record_id):
        from lib.errors import MetadataUnavailable
        raise MetadataUnavailable("The metadata service is unavailable.")

    monkeypatch.setattr(SqliteServerRecords, "delete", refuse)
    report = delete_records(store, repo, server, [record.id], trail=trail_of(repo))
    assert not report.ok
    assert repo.get(record.id).status is Status.FAILED and repo.get(record.id).error == DELETING
    assert not keys_in_bucket(store)


def test_can_discard_failed_and_stale_pending_only(repo, server) -> None:
    ready = add_record(repo)
    pending = add_record(repo, ready=False)
    failed = server.mark_failed(add_record(repo, ready=False).id, "boom")
    settings = replace(SETTINGS, stale_pending_s=60)
    assert not can_discard(ready, settings)
    assert can_discard(failed, settings)
    assert not can_discard(pending, settings)
    assert can_discard(pending, settings, now=pending.updated_at + timedelta(seconds=61))


# --- re-analyse --------------------------------------------------------------------------------------


def test_reanalyse_downloads_the_original_and_ground_truth_and_saves(store, repo, server, monkeypatch) -> None:
    record = add_record(repo, store)
    gt_key = record.s3_key.replace("original.avi", "ground_truth.csv")
    # A table of mean heart rates names the recording by its original name, not the temporary copy's.
    store._client.put_object(Bucket=BUCKET, Key=gt_key, Body=b"other,90\nrec,72.5\n")
    server.set_ground_truth(record.id, GroundTruthFile(gt_key, "rates.csv", 19))
    seen: dict[str, object] = {}

    def fake_analyse(path, *, method, lossless, ground_truth, progress, band):
        seen.update(body=Path(path).read_bytes(), method=method, lossless=lossless,
                    truth=(ground_truth.source, ground_truth.hr_bpm), band=band)
        progress(1.0)
        return AnalysisSummary(method=method, hr_bpm=70.0, snr_db=5.0, hr_track=(), pulse=(), pulse_fs=0.0,
                               flags=(), frames_analysed=375, seconds_taken=0.1)

    monkeypatch.setattr(library.rppg, "analyse", fake_analyse)
    stages: list[Step] = []
    updated = reanalyse_here(store, repo, server, record.id, method="chrom", progress=lambda p: stages.append(p.step),
                             parent=Path(repo.db_path).parent, band=(0.7, 4.0))
    assert seen == {"body": b"bytes", "method": "CHROM", "lossless": True, "truth": ("rates.csv", 72.5),
                    "band": (0.7, 4.0)}
    assert updated.analysis["hr_bpm"] == 70.0 and repo.get(record.id).analysis["method"] == "CHROM"
    assert stages[0] is Step.DOWNLOAD and stages[-1] is Step.ANALYSE
    assert not [p for p in Path(repo.db_path).parent.iterdir() if p.name.startswith("pulsevault-reanalyse-")]


def test_reanalyse_refuses_unknown_methods_unfinished_and_foreign_records(store, repo, server, tmp_path) -> None:
    with pytest.raises(ValidationError):
        reanalyse_here(store, repo, server, add_record(repo, store).id, method="magic")
    with pytest.raises(ValidationError):
        reanalyse_here(store, repo, server, add_record(repo, ready=False).id)
    theirs = add_record(SqliteRepository(tmp_path / "demo.db", OTHER))
    with pytest.raises(NotFound):
        reanalyse_here(store, repo, server, theirs.id)
