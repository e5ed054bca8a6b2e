"""One contract, two stores: SqliteRepository/SqliteServerRecords (demo) and SupabaseRepository/
SupabaseServerRecords (cloud).

The Supabase side runs supabase-py over HTTP against the stand-in: the user's repository signed in
through its GoTrue, so the real RLS and column grants of sql/ decide; the server's records with the
service-role key. The SQLite side must behave the same, including refusing another user's rows.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from lib.errors import KeyOwnershipError, MetadataError, NotFound, QuotaExceeded, ValidationError
from lib.records import FileRecord, GroundTruthFile, ListQuery, NewRecord, ResearchFields, Status, VideoProperties
from lib.repository import Repository
from lib.units import human_bytes
from lib.usage import UserRows
from tests.support.postgres import pg_dsn  # noqa: F401
from tests.support.records import sqlite_rows, supabase_rows
from tests.support.supabase.fixtures import supabase_standin, supabase_standin_server  # noqa: F401

MakeRows = Callable[[str], UserRows]
QUOTA = 10**12
VIDEO = VideoProperties(duration_s=10.0, fps=30.0, width=640, height=480, frame_count=300, codec="FFV1",
                        lossless=True, browser_playable=False, bit_rate=12_000_000)


@pytest.fixture(params=["sqlite", "supabase"])
def make_rows(request: pytest.FixtureRequest, tmp_path: Path) -> MakeRows:
    """make_rows(name) -> a fresh user called ``name``: their repository and the server's records for them."""
    if request.param == "sqlite":
        db = tmp_path / "demo.db"
        return lambda name: sqlite_rows(db)
    standin = request.getfixturevalue("supabase_standin")
    return lambda name: supabase_rows(standin, name)


def _new(repo: Repository, name: str = "run.avi", size: int = 1_000, *, content_type: str = "video/x-msvideo",
         research: ResearchFields | None = None, sha256: str | None = None) -> NewRecord:
    record_id = str(uuid.uuid4())
    return NewRecord(
        id=record_id, s3_key=f"recordings/{repo.user_id}/2024/05/{record_id}/original.avi", bucket="lab",
        original_name=name, content_type=content_type, size_bytes=size,
        research=research or ResearchFields(), sha256=sha256,
    )


def _pending(rows: UserRows, name: str = "run.avi", size: int = 1_000, **kwargs) -> FileRecord:
    return rows.server.reserve(_new(rows.repo, name, size, **kwargs), QUOTA)


def _ready(rows: UserRows, name: str = "run.avi", size: int = 1_000, *,
           video: VideoProperties | None = VIDEO, **kwargs) -> FileRecord:
    record = _pending(rows, name, size, **kwargs)
    return rows.server.mark_ready(record.id, size_bytes=size, sha256=kwargs.get("sha256") or uuid.uuid4().hex * 2,
                                  video=video, thumbnail_key=f"{_prefix(record)}thumb.jpg", preview_key=None)


def _prefix(record: FileRecord) -> str:
    return record.s3_key.rsplit("/", 1)[0] + "/"


def test_reserve_then_get(make_rows):
    rows = make_rows("ada")
    new = _new(rows.repo, research=ResearchFields("S01", "baseline", "quiet room", ("rest", "lab-a")))
    created = rows.server.reserve(new, QUOTA)
    assert created.id == new.id and created.user_id == rows.repo.user_id
    assert created.status is Status.PENDING and created.error is None and created.video is None
    assert created.research == ResearchFields("S01", "baseline", "quiet room", ("rest", "lab-a"))
    assert created.created_at.tzinfo is not None and created.created_at.utcoffset() == timedelta(0)
    assert abs(created.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert rows.repo.get(new.id) == created


def test_mark_ready_and_failed(make_rows):
    rows = make_rows("ada")
    record = _ready(rows, size=2_048)
    assert record.status is Status.READY and record.video == VIDEO and record.size_bytes == 2_048
    assert record.thumbnail_key.endswith("thumb.jpg") and record.playback_key == record.s3_key
    assert record.updated_at >= record.created_at
    failed = rows.server.mark_failed(_pending(rows).id, "upload interrupted " * 500)
    assert failed.status is Status.FAILED and failed.error.startswith("upload interrupted")
    assert len(failed.error) <= 2_000


def test_preview_is_the_playback_key(make_rows):
    rows = make_rows("ada")
    record = _pending(rows, size=1)
    ready = rows.server.mark_ready(record.id, size_bytes=1, sha256=None, video=None, thumbnail_key=None,
                                   preview_key=f"{_prefix(record)}preview.mp4", analysis={"hr_bpm": 61.5})
    assert ready.playback_key.endswith("preview.mp4") and ready.analysis == {"hr_bpm": 61.5}


def test_missing_and_malformed_ids_are_not_found(make_rows):
    rows = make_rows("ada")
    for record_id in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(NotFound):
            rows.repo.get(record_id)
        with pytest.raises(NotFound):
            rows.server.mark_failed(record_id, "x")


def test_list_filters_sort_and_paging(make_rows):
    rows = make_rows("ada")
    repo = rows.repo
    a = _ready(rows, "alpha_1.avi", 300, research=ResearchFields("S01", "baseline", "", ("rest",)))
    b = _ready(rows, "beta.mp4", 100, content_type="video/mp4", video=None,
               research=ResearchFields("S02", "exercise", "after 100% effort", ("rest", "bike")))
    c = _pending(rows, "gamma, (take 2).avi", 200, research=ResearchFields(tags=("bike",)))
    ids = lambda page: [r.id for r in page.records]  # noqa: E731

    assert ids(repo.list(ListQuery())) == [c.id, b.id, a.id]
    assert ids(repo.list(ListQuery(text="ALPHA"))) == [a.id]
    assert ids(repo.list(ListQuery(text="s02"))) == [b.id]
    assert ids(repo.list(ListQuery(text="exer"))) == [b.id]
    assert ids(repo.list(ListQuery(text="100%"))) == [b.id]
    assert ids(repo.list(ListQuery(text="a_1"))) == [a.id]
    assert ids(repo.list(ListQuery(text="a%1"))) == []
    assert ids(repo.list(ListQuery(text="a, (take"))) == [c.id]
    assert ids(repo.list(ListQuery(statuses=(Status.PENDING,)))) == [c.id]
    assert ids(repo.list(ListQuery(statuses=(Status.READY, Status.FAILED)))) == [b.id, a.id]
    assert ids(repo.list(ListQuery(tags=("bike",)))) == [c.id, b.id]
    assert ids(repo.list(ListQuery(tags=("bike", "rest")))) == [b.id]
    assert ids(repo.list(ListQuery(lossless=True))) == [a.id]
    assert ids(repo.list(ListQuery(lossless=False))) == []
    today = datetime.now(UTC).date()
    assert len(repo.list(ListQuery(date_from=today, date_to=today)).records) == 3
    assert repo.list(ListQuery(date_to=today - timedelta(days=1))).total == 0
    assert repo.list(ListQuery(date_from=today + timedelta(days=1))).total == 0
    assert ids(repo.list(ListQuery(sort="size_bytes", descending=False))) == [b.id, c.id, a.id]
    assert ids(repo.list(ListQuery(sort="original_name", descending=False))) == [a.id, b.id, c.id]
    assert ids(repo.list(ListQuery(sort="duration_s")))[-1] in {b.id, c.id}  # no duration sorts last

    page = repo.list(ListQuery(sort="size_bytes", page=2, page_size=2))
    assert (ids(page), page.total, page.page, page.page_size, page.page_count) == ([b.id], 3, 2, 2, 2)


@pytest.mark.parametrize("query", [ListQuery(sort="s3_key; drop table user_files"), ListQuery(page=0),
                                   ListQuery(page_size=10_000),
                                   ListQuery(date_from=date(2024, 2, 1), date_to=date(2024, 1, 1))])
def test_list_refuses_bad_queries(make_rows, query):
    with pytest.raises(ValidationError):
        make_rows("ada").repo.list(query)


def test_find_ready_by_sha256(make_rows):
    rows = make_rows("ada")
    digest = "ab" * 32
    _pending(rows, sha256=digest)
    assert rows.repo.find_ready_by_sha256(digest) is None
    ready = _ready(rows, sha256=digest)
    assert rows.repo.find_ready_by_sha256(digest).id == ready.id
    assert make_rows("bob").repo.find_ready_by_sha256(digest) is None


def test_update_research_analysis_and_ground_truth(make_rows):
    rows = make_rows("ada")
    repo, server = rows.repo, rows.server
    record = _ready(rows)
    updated = repo.update_research(record.id, ResearchFields(" S09 ", "v2", "notes", ("a", " b ", "a", "")))
    assert updated.research == ResearchFields("S09", "v2", "notes", ("a", "b"))
    analysis = {"method": "POS", "hr_bpm": 72.5, "flags": [{"code": "low_light"}]}
    assert server.set_analysis(record.id, analysis).analysis == analysis
    assert server.set_analysis(record.id, None).analysis is None
    key = f"{_prefix(record)}ground_truth.csv"
    before = repo.usage().total_bytes
    attached = server.set_ground_truth(record.id, GroundTruthFile(key, "subject 1 pulse.csv", 1_234))
    assert (attached.ground_truth_key, attached.ground_truth_name, attached.ground_truth_bytes) == (
        key, "subject 1 pulse.csv", 1_234)
    assert repo.usage().total_bytes == before + 1_234  # the ground truth counts in usage
    with pytest.raises(QuotaExceeded):  # and in the quota a new recording is reserved against
        server.reserve(_new(repo, size=100), quota_bytes=before + 1_234 + 99)
    removed = server.set_ground_truth(record.id, None)
    assert (removed.ground_truth_key, removed.ground_truth_name, removed.ground_truth_bytes) == (None, None, 0)
    assert repo.usage().total_bytes == before
    bids = f"{_prefix(record)}ground_truth_physio.tsv.gz"  # every format ending passes the database's check
    assert server.set_ground_truth(record.id, GroundTruthFile(bids, "s_physio.tsv.gz", 9)).ground_truth_key == bids
    with pytest.raises(KeyOwnershipError):
        server.set_ground_truth(record.id, GroundTruthFile(f"recordings/{uuid.uuid4()}/x/ground_truth.csv", "a", 1))


def test_delete(make_rows):
    rows = make_rows("ada")
    record = _ready(rows)
    rows.server.delete(record.id)
    with pytest.raises(NotFound):
        rows.repo.get(record.id)
    with pytest.raises(NotFound):
        rows.server.delete(record.id)


def test_duplicate_key_is_refused(make_rows):
    rows = make_rows("ada")
    new = _new(rows.repo)
    rows.server.reserve(new, QUOTA)
    with pytest.raises(MetadataError):
        rows.server.reserve(new, QUOTA)


def test_quota_counts_ready_and_pending_rows(make_rows):
    """Issue 14, attacks 3 and 5: an unfinished upload holds its declared size until it ends."""
    rows = make_rows("ada")
    _ready(rows, size=300)
    pending = _pending(rows, size=500)
    held = f"you use {human_bytes(800)} ({human_bytes(500)} of it in unfinished uploads) of your {human_bytes(1_000)}"
    with pytest.raises(QuotaExceeded, match=re.escape(held)):
        rows.server.reserve(_new(rows.repo, size=201), quota_bytes=1_000)
    rows.server.mark_failed(pending.id, "cancelled")
    rows.server.reserve(_new(rows.repo, size=700), quota_bytes=1_000)
    bob = make_rows("bob")  # each user's own quota
    assert bob.server.reserve(_new(bob.repo, size=1_000), quota_bytes=1_000).status is Status.PENDING


def test_usage(make_rows):
    rows = make_rows("ada")
    repo = rows.repo
    _ready(rows, "a.avi", 300, research=ResearchFields("S01"))
    _ready(rows, "b.mp4", 100, content_type="video/mp4", video=None, research=ResearchFields("S01"))
    _ready(rows, "c.avi", 50)
    _pending(rows, "pending.avi", 10_000)
    _ready(make_rows("bob"), size=1)  # nothing of other users counts
    usage = repo.usage()
    month = datetime.now(UTC).strftime("%Y-%m")
    assert (usage.total_bytes, usage.total_count) == (450, 3)
    assert [(b.label, b.bytes, b.count) for b in usage.by_month] == [(month, 450, 3)]
    assert [(b.label, b.bytes, b.count) for b in usage.by_content_type] == [
        ("video/x-msvideo", 350, 2), ("video/mp4", 100, 1)]
    assert [(b.label, b.bytes) for b in usage.by_lossless] == [("lossless", 350), ("unknown", 100)]
    assert [(b.label, b.bytes) for b in usage.by_subject] == [("S01", 400), ("(none)", 50)]
    assert [r.original_name for r in usage.largest] == ["a.avi", "b.mp4", "c.avi"]
    empty = make_rows("carol").repo.usage()
    assert (empty.total_bytes, empty.total_count, empty.by_month, empty.largest) == (0, 0, (), ())


def test_iter_all(make_rows):
    rows = make_rows("ada")
    ready = _ready(rows)
    pending = _pending(rows)
    assert [r.id for r in rows.repo.iter_all()] == [ready.id, pending.id]
    assert [r.id for r in rows.repo.iter_all((Status.PENDING,))] == [pending.id]
    assert {r.id for r in rows.repo.get_many([ready.id, pending.id, str(uuid.uuid4())])} == {ready.id, pending.id}


def test_another_users_rows_do_not_exist(make_rows):
    ada, bob = make_rows("ada"), make_rows("bob")
    record = _ready(ada)
    for attempt in (
        lambda: bob.repo.get(record.id),
        lambda: bob.repo.update_research(record.id, ResearchFields("stolen")),
        lambda: bob.server.mark_failed(record.id, "x"),
        lambda: bob.server.mark_ready(record.id, size_bytes=1, sha256=None, video=None, thumbnail_key=None,
                                      preview_key=None),
        lambda: bob.server.set_analysis(record.id, {}),
        lambda: bob.server.delete(record.id),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert bob.repo.get_many([record.id]) == []
    assert bob.repo.list(ListQuery()).total == 0
    assert bob.repo.usage().total_bytes == 0
    assert ada.repo.get(record.id) == record


def test_keys_outside_own_prefix_are_refused(make_rows):
    ada, bob = make_rows("ada"), make_rows("bob")
    with pytest.raises(KeyOwnershipError):
        bob.server.reserve(_new(ada.repo), QUOTA)
    record = _pending(bob, size=1)
    with pytest.raises(KeyOwnershipError):
        bob.server.mark_ready(record.id, size_bytes=1, sha256=None, video=None,
                              thumbnail_key=f"recordings/{ada.repo.user_id}/thumb.jpg", preview_key=None)
    climbing = f"recordings/{bob.repo.user_id}/../{ada.repo.user_id}/2024/05/{record.id}/thumb.jpg"
    with pytest.raises(KeyOwnershipError):
        bob.server.mark_ready(record.id, size_bytes=1, sha256=None, video=None, thumbnail_key=climbing,
                              preview_key=None)
