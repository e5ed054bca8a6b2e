"""One contract, two repositories: SqliteRepository (demo) and SupabaseRepository (cloud).

The Supabase side runs supabase-py over HTTP against the stand-in, signed in
through its GoTrue, so the real RLS of sql/ decides; the SQLite side must
behave the same, including refusing another user's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from lib.errors import KeyOwnershipError, MetadataError, NotFound, ValidationError
from lib.records import FileRecord, GroundTruthFile, ListQuery, NewRecord, ResearchFields, Status, VideoProperties
from lib.repository import Repository, SqliteRepository
from tests.support.postgres import pg_dsn  # noqa: F401
from tests.support.supabase.fixtures import supabase_standin, supabase_standin_server  # noqa: F401

MakeRepo = Callable[[str], Repository]
VIDEO = VideoProperties(duration_s=10.0, fps=30.0, width=640, height=480, frame_count=300, codec="FFV1",
                        lossless=True, browser_playable=False, bit_rate=12_000_000)


@pytest.fixture(params=["sqlite", "supabase"])
def make_repo(request: pytest.FixtureRequest, tmp_path: Path) -> MakeRepo:
    """make_repo(name) -> a repository signed in as a fresh user called ``name``."""
    if request.param == "sqlite":
        db = tmp_path / "demo.db"
        return lambda name: SqliteRepository(db, str(uuid.uuid4()))
    return request.getfixturevalue("supabase_standin").new_user_repository


def _new(repo: Repository, name: str = "run.avi", size: int = 1_000, *, content_type: str = "video/x-msvideo",
         research: ResearchFields | None = None, sha256: str | None = None) -> NewRecord:
    record_id = str(uuid.uuid4())
    return NewRecord(
        id=record_id, s3_key=f"recordings/{repo.user_id}/2024/05/{record_id}/original.avi", bucket="lab",
        original_name=name, content_type=content_type, size_bytes=size,
        research=research or ResearchFields(), sha256=sha256,
    )


def _ready(repo: Repository, name: str = "run.avi", size: int = 1_000, *,
           video: VideoProperties | None = VIDEO, **kwargs) -> FileRecord:
    record = repo.create_pending(_new(repo, name, size, **kwargs))
    return repo.mark_ready(record.id, size_bytes=size, sha256=kwargs.get("sha256") or uuid.uuid4().hex * 2,
                           video=video, thumbnail_key=f"{_prefix(record)}thumb.jpg", preview_key=None)


def _prefix(record: FileRecord) -> str:
    return record.s3_key.rsplit("/", 1)[0] + "/"


def test_create_pending_then_get(make_repo):
    repo = make_repo("ada")
    new = _new(repo, research=ResearchFields("S01", "baseline", "quiet room", ("rest", "lab-a")))
    created = repo.create_pending(new)
    assert created.id == new.id and created.user_id == repo.user_id
    assert created.status is Status.PENDING and created.error is None and created.video is None
    assert created.research == ResearchFields("S01", "baseline", "quiet room", ("rest", "lab-a"))
    assert created.created_at.tzinfo is not None and created.created_at.utcoffset() == timedelta(0)
    assert abs(created.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert repo.get(new.id) == created


def test_mark_ready_and_failed(make_repo):
    repo = make_repo("ada")
    record = _ready(repo, size=2_048)
    assert record.status is Status.READY and record.video == VIDEO and record.size_bytes == 2_048
    assert record.thumbnail_key.endswith("thumb.jpg") and record.playback_key == record.s3_key
    assert record.updated_at >= record.created_at
    failed = repo.mark_failed(repo.create_pending(_new(repo)).id, "upload interrupted " * 500)
    assert failed.status is Status.FAILED and failed.error.startswith("upload interrupted")
    assert len(failed.error) <= 2_000


def test_preview_is_the_playback_key(make_repo):
    repo = make_repo("ada")
    record = repo.create_pending(_new(repo))
    ready = repo.mark_ready(record.id, size_bytes=1, sha256=None, video=None, thumbnail_key=None,
                            preview_key=f"{_prefix(record)}preview.mp4", analysis={"hr_bpm": 61.5})
    assert ready.playback_key.endswith("preview.mp4") and ready.analysis == {"hr_bpm": 61.5}


def test_missing_and_malformed_ids_are_not_found(make_repo):
    repo = make_repo("ada")
    for record_id in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(NotFound):
            repo.get(record_id)
        with pytest.raises(NotFound):
            repo.mark_failed(record_id, "x")


def test_list_filters_sort_and_paging(make_repo):
    repo = make_repo("ada")
    a = _ready(repo, "alpha_1.avi", 300, research=ResearchFields("S01", "baseline", "", ("rest",)))
    b = _ready(repo, "beta.mp4", 100, content_type="video/mp4", video=None,
               research=ResearchFields("S02", "exercise", "after 100% effort", ("rest", "bike")))
    c = repo.create_pending(_new(repo, "gamma, (take 2).avi", 200, research=ResearchFields(tags=("bike",))))
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
def test_list_refuses_bad_queries(make_repo, query):
    with pytest.raises(ValidationError):
        make_repo("ada").list(query)


def test_find_ready_by_sha256(make_repo):
    repo = make_repo("ada")
    digest = "ab" * 32
    repo.create_pending(_new(repo, sha256=digest))
    assert repo.find_ready_by_sha256(digest) is None
    ready = _ready(repo, sha256=digest)
    assert repo.find_ready_by_sha256(digest).id == ready.id
    assert make_repo("bob").find_ready_by_sha256(digest) is None


def test_update_research_analysis_and_ground_truth(make_repo):
    repo = make_repo("ada")
    record = _ready(repo)
    updated = repo.update_research(record.id, ResearchFields(" S09 ", "v2", "notes", ("a", " b ", "a", "")))
    assert updated.research == ResearchFields("S09", "v2", "notes", ("a", "b"))
    analysis = {"method": "POS", "hr_bpm": 72.5, "flags": [{"code": "low_light"}]}
    assert repo.set_analysis(record.id, analysis).analysis == analysis
    assert repo.set_analysis(record.id, None).analysis is None
    key = f"{_prefix(record)}ground_truth.csv"
    before = repo.usage().total_bytes
    attached = repo.set_ground_truth(record.id, GroundTruthFile(key, "subject 1 pulse.csv", 1_234))
    assert (attached.ground_truth_key, attached.ground_truth_name, attached.ground_truth_bytes) == (
        key, "subject 1 pulse.csv", 1_234)
    assert repo.usage().total_bytes == before + 1_234  # the ground truth counts in usage
    removed = repo.set_ground_truth(record.id, None)
    assert (removed.ground_truth_key, removed.ground_truth_name, removed.ground_truth_bytes) == (None, None, 0)
    assert repo.usage().total_bytes == before
    with pytest.raises(KeyOwnershipError):
        repo.set_ground_truth(record.id, GroundTruthFile(f"recordings/{uuid.uuid4()}/x/ground_truth.csv", "a.csv", 1))


def test_delete(make_repo):
    repo = make_repo("ada")
    record = _ready(repo)
    repo.delete(record.id)
    with pytest.raises(NotFound):
        repo.get(record.id)
    with pytest.raises(NotFound):
        repo.delete(record.id)


def test_duplicate_key_is_refused(make_repo):
    repo = make_repo("ada")
    new = _new(repo)
    repo.create_pending(new)
    with pytest.raises(MetadataError):
        repo.create_pending(NewRecord(**{**new.__dict__, "id": str(uuid.uuid4())}))


def test_usage(make_repo):
    repo = make_repo("ada")
    _ready(repo, "a.avi", 300, research=ResearchFields("S01"))
    _ready(repo, "b.mp4", 100, content_type="video/mp4", video=None, research=ResearchFields("S01"))
    _ready(repo, "c.avi", 50)
    repo.create_pending(_new(repo, "pending.avi", 10_000))
    bob = make_repo("bob")
    _ready(bob, size=1)  # nothing of other users counts
    usage = repo.usage()
    month = datetime.now(UTC).strftime("%Y-%m")
    assert (usage.total_bytes, usage.total_count) == (450, 3)
    assert [(b.label, b.bytes, b.count) for b in usage.by_month] == [(month, 450, 3)]
    assert [(b.label, b.bytes, b.count) for b in usage.by_content_type] == [
        ("video/x-msvideo", 350, 2), ("video/mp4", 100, 1)]
    assert [(b.label, b.bytes) for b in usage.by_lossless] == [("lossless", 350), ("unknown", 100)]
    assert [(b.label, b.bytes) for b in usage.by_subject] == [("S01", 400), ("(none)", 50)]
    assert [r.original_name for r in usage.largest] == ["a.avi", "b.mp4", "c.avi"]
    empty = make_repo("carol").usage()
    assert (empty.total_bytes, empty.total_count, empty.by_month, empty.largest) == (0, 0, (), ())


def test_iter_all(make_repo):
    repo = make_repo("ada")
    ready = _ready(repo)
    pending = repo.create_pending(_new(repo))
    assert [r.id for r in repo.iter_all()] == [ready.id, pending.id]
    assert [r.id for r in repo.iter_all((Status.PENDING,))] == [pending.id]


def test_another_users_rows_do_not_exist(make_repo):
    ada, bob = make_repo("ada"), make_repo("bob")
    record = _ready(ada)
    for attempt in (
        lambda: bob.get(record.id),
        lambda: bob.mark_failed(record.id, "x"),
        lambda: bob.mark_ready(record.id, size_bytes=1, sha256=None, video=None, thumbnail_key=None,
                               preview_key=None),
        lambda: bob.update_research(record.id, ResearchFields("stolen")),
        lambda: bob.set_analysis(record.id, {}),
        lambda: bob.delete(record.id),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert bob.list(ListQuery()).total == 0
    assert bob.usage().total_bytes == 0
    assert ada.get(record.id) == record


def test_keys_outside_own_prefix_are_refused(make_repo):
    ada, bob = make_repo("ada"), make_repo("bob")
    with pytest.raises(KeyOwnershipError):
        bob.create_pending(_new(ada))
    record = bob.create_pending(_new(bob))
    with pytest.raises(KeyOwnershipError):
        bob.mark_ready(record.id, size_bytes=1, sha256=None, video=None,
                       thumbnail_key=f"recordings/{ada.user_id}/thumb.jpg", preview_key=None)
