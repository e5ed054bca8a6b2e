"""lib/pipeline end to end: SeaweedFS over real HTTP, SQLite and (where PostgreSQL is
installed) the Supabase stand-in; every bad input of issue 5 leaves a clear message and nothing stored."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from lib import pipeline
from lib.errors import (
    DuplicateRecording,
    FileTooLarge,
    IntegrityError,
    MetadataUnavailable,
    QuotaExceeded,
    UnsupportedMedia,
)
from lib.keys import MAX_FILENAME_LENGTH, user_prefix
from lib.pipeline import Attempt, Backends, Progress, Step
from lib.records import FileRecord, ResearchFields, Status
from lib.repository import Repository, ServerRecords, SqliteRepository
from lib.settings import Settings
from lib.usage import UserRows
from tests.support import videos
from tests.support.records import backends_of, server_of, sqlite_rows, supabase_rows

RESEARCH = ResearchFields(subject_id="S07", session_label="baseline", notes="quiet room",
                          tags=("rest", "lab-a"))

MakeRows = Callable[[], UserRows]


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny generated recordings, good and bad, made once for the module."""
    folder = tmp_path_factory.mktemp("clips")
    mjpg = videos.opencv_video(folder, "mjpg", frames=30)
    assert mjpg is not None
    h264 = videos.h264_mp4(folder / "h264.mp4")
    return {
        "mjpg": mjpg,
        "h264": h264,
        "zero": videos.zero_byte(folder / "zero.mp4"),
        "text": videos.text_file(folder / "notes.mp4"),
        "truncated": videos.truncated_copy(h264, folder / "truncated.mp4"),
        "broken_index": videos.avi_with_broken_index(mjpg, folder / "broken_index.avi"),
    }


@pytest.fixture(params=["sqlite", "supabase"])
def make_rows(request: pytest.FixtureRequest, tmp_path: Path) -> MakeRows:
    """make_rows() -> a fresh user's rows both ways, on SQLite or on Supabase (the stand-in)."""
    if request.param == "sqlite":
        return lambda: sqlite_rows(tmp_path / "demo.db")
    standin = request.getfixturevalue("supabase_standin")
    return lambda: supabase_rows(standin)


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    """SQLite only: for checks that do not depend on the metadata backend."""
    return SqliteRepository(tmp_path / "demo.db", str(uuid.uuid4()))


def check(path: Path, name: str, settings: Settings, workdir: Path, **kwargs) -> pipeline.PreparedRecording:
    return pipeline.check_recording(path, name, max_bytes=settings.max_upload_bytes, workdir=workdir, **kwargs)


def objects(s3_client, bucket: str) -> list[str]:
    return [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def rows(repo: Repository) -> list[FileRecord]:
    return list(repo.iter_all())


def assert_nothing_stored(s3_client, settings: Settings, repo: Repository) -> None:
    assert objects(s3_client, settings.s3.bucket) == []
    assert rows(repo) == []


# --- the good path -----------------------------------------------------------------------------------


def test_lossy_avi_becomes_ready_with_original_thumbnail_and_proxy(clips, settings, store, make_rows,
                                                                  s3_client, tmp_path):
    user = make_rows()
    repo = user.repo
    backends = Backends(settings, store, repo, user.server)
    events: list[Progress] = []
    record = pipeline.process_upload(clips["mjpg"], "lab rec 1.avi", RESEARCH, backends,
                                     progress=events.append)

    assert record.status is Status.READY
    assert record.original_name == "lab rec 1.avi"
    assert record.content_type == "video/x-msvideo"
    assert record.size_bytes == clips["mjpg"].stat().st_size
    assert record.research == RESEARCH
    assert record.video is not None and not record.video.lossless and not record.video.browser_playable
    assert record.preview_key and record.thumbnail_key
    assert record.analysis is not None and "flags" in record.analysis
    assert repo.get(record.id).status is Status.READY
    keys = sorted(objects(s3_client, settings.s3.bucket))
    assert keys == sorted([record.s3_key, record.thumbnail_key, record.preview_key])
    assert all(k.startswith(user_prefix(repo.user_id)) for k in keys)
    head = s3_client.head_object(Bucket=settings.s3.bucket, Key=record.s3_key)
    assert head["Metadata"]["sha256"] == record.sha256
    assert head["ContentLength"] == record.size_bytes
    preview = s3_client.head_object(Bucket=settings.s3.bucket, Key=record.preview_key)
    assert preview["ContentType"] == "video/mp4"

    steps = [e.step for e in events]
    for step in (Step.VALIDATE, Step.PROBE, Step.THUMBNAIL, Step.PREVIEW, Step.CHECKSUM, Step.ANALYSE,
                 Step.UPLOAD_ORIGINAL, Step.UPLOAD_PREVIEW, Step.VERIFY, Step.READY):
        assert step in steps, step
    sent = [e for e in events if e.step is Step.UPLOAD_ORIGINAL]
    assert sent[-1].unit == "bytes" and sent[-1].done == sent[-1].total == record.size_bytes
    assert "of" in sent[-1].describe()


def test_browser_playable_mp4_gets_no_proxy(clips, settings, store, repo, s3_client):
    record = pipeline.process_upload(clips["h264"], "clip.mp4", RESEARCH, backends_of(settings, store, repo),
                                     analyse=False)
    assert record.status is Status.READY
    assert record.preview_key is None and record.playback_key == record.s3_key
    assert record.analysis is None
    assert len(objects(s3_client, settings.s3.bucket)) == 2


def test_prepare_stores_nothing_and_discard_removes_its_files(clips, settings, repo, s3_client, tmp_path):
    prepared = check(clips["mjpg"], "a.avi", settings, tmp_path / "w")
    assert prepared.thumbnail.is_file() and prepared.preview is not None and prepared.preview.is_file()
    assert prepared.playback_path == prepared.preview
    assert_nothing_stored(s3_client, settings, repo)
    pipeline.discard(prepared)
    assert not (tmp_path / "w").exists()
    assert clips["mjpg"].exists()  # the source outside the workdir is never touched


def test_each_stored_object_is_verified_once(clips, settings, store, repo, monkeypatch):
    heads: list[str] = []
    real_head = store.head

    def head(key: str, *, owner: str):
        heads.append(key)
        return real_head(key, owner=owner)

    monkeypatch.setattr(store, "head", head)
    record = pipeline.process_upload(clips["mjpg"], "once.avi", RESEARCH, backends_of(settings, store, repo),
                                     analyse=False)
    assert sorted(heads) == sorted([record.s3_key, record.thumbnail_key, record.preview_key])


def test_a_size_mismatch_after_upload_removes_what_arrived(clips, settings, store, repo, s3_client, tmp_path,
                                                           monkeypatch):
    prepared = check(clips["mjpg"], "a.avi", settings, tmp_path / "w", analyse=False)
    real_head = store.head
    monkeypatch.setattr(store, "head", lambda key, *, owner: replace(real_head(key, owner=owner), size=1))
    with pytest.raises(IntegrityError, match="so the upload was removed"):
        pipeline.store_recording(prepared, RESEARCH, backends_of(settings, store, repo))
    assert objects(s3_client, settings.s3.bucket) == []
    [row] = rows(repo)
    assert row.status is Status.FAILED and prepared.path.exists()


# --- bad input: refused before anything is stored ---------------------------------------------------------


@pytest.mark.parametrize(
    ("clip", "name", "error", "words"),
    [
        ("zero", "empty.mp4", UnsupportedMedia, "empty"),
        ("text", "notes.mp4", UnsupportedMedia, "plain text"),
        ("truncated", "cut.mp4", UnsupportedMedia, "truncated"),
        ("broken_index", "broken.avi", UnsupportedMedia, "index"),
        ("h264", "clip.wmv", UnsupportedMedia, ".wmv files are not accepted"),
        ("h264", "clip", UnsupportedMedia, "no file extension"),
    ],
)
def test_bad_file_is_refused_with_a_clear_message(clips, settings, store, repo, s3_client,
                                                  clip, name, error, words):
    with pytest.raises(error) as caught:
        pipeline.process_upload(clips[clip], name, RESEARCH, backends_of(settings, store, repo))
    assert words in str(caught.value)
    assert "Traceback" not in str(caught.value) and str(clips[clip].parent) not in str(caught.value)
    assert_nothing_stored(s3_client, settings, repo)


def test_file_over_the_size_limit_is_refused(clips, settings, store, repo, s3_client):
    small = replace(settings, max_upload_bytes=1024)
    with pytest.raises(FileTooLarge, match=r"over the 1\.0 KiB upload limit"):
        pipeline.process_upload(clips["mjpg"], "big.avi", RESEARCH, backends_of(small, store, repo))
    assert_nothing_stored(s3_client, settings, repo)


def test_limit_is_checked_again_at_upload_time(clips, settings, store, repo, s3_client, tmp_path):
    prepared = check(clips["mjpg"], "a.avi", settings, tmp_path / "w", analyse=False)
    with pytest.raises(FileTooLarge):
        pipeline.store_recording(prepared, RESEARCH, backends_of(replace(settings, max_upload_bytes=1024), store, repo))
    assert_nothing_stored(s3_client, settings, repo)


def test_quota_is_checked_before_anything_is_stored(clips, settings, store, repo, s3_client):
    tiny = replace(settings, quota_bytes=clips["mjpg"].stat().st_size - 1)
    with pytest.raises(QuotaExceeded, match="quota"):
        pipeline.process_upload(clips["mjpg"], "a.avi", RESEARCH, backends_of(tiny, store, repo),
                                analyse=False)
    assert_nothing_stored(s3_client, settings, repo)


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.avi",
        "C:\\lab\\session 1\\rec.avi",
        "folder/sub/rec.avi",
        "rec\x00ord.avi",
        "x" * 300 + ".avi",
    ],
)
def test_hostile_names_are_sanitised_and_never_reach_the_key(clips, settings, store, repo, s3_client, name):
    record = pipeline.process_upload(clips["mjpg"], name, RESEARCH, backends_of(settings, store, repo),
                                     analyse=False)
    assert record.status is Status.READY
    stored = record.original_name
    assert "/" not in stored and "\\" not in stored and "\x00" not in stored and ".." not in stored
    assert stored.endswith(".avi") and len(stored) <= MAX_FILENAME_LENGTH
    for key in objects(s3_client, settings.s3.bucket):
        assert key.startswith(f"{user_prefix(repo.user_id)}") and ".." not in key
        assert key.rsplit("/", 1)[1] in {"original.avi", "thumb.jpg", "preview.mp4"}


def test_name_change_is_reported(clips, settings, repo, tmp_path):
    prepared = check(clips["mjpg"], "rec\x00ord.avi", settings, tmp_path / "w", analyse=False)
    assert prepared.name_changed and prepared.original_name == "record.avi"
    folder = check(clips["mjpg"], "day1/rec.avi", settings, tmp_path / "v", analyse=False)
    assert not folder.name_changed  # a folder upload's path is not a change worth a notice


# --- the same file twice ---------------------------------------------------------------------------------


def test_same_file_twice_is_reported_as_duplicate(clips, settings, store, make_rows, s3_client, tmp_path):
    user = make_rows()
    repo = user.repo
    backends = Backends(settings, store, repo, user.server)
    first = pipeline.process_upload(clips["mjpg"], "a.avi", RESEARCH, backends, analyse=False)
    stored = sorted(objects(s3_client, settings.s3.bucket))

    prepared = check(clips["mjpg"], "copy of a.avi", settings, tmp_path / "w", analyse=False)
    duplicate = pipeline.find_duplicate(prepared.sha256, repo)
    assert duplicate is not None and duplicate.id == first.id
    with pytest.raises(DuplicateRecording, match=r"already stored as a\.avi") as caught:
        pipeline.store_recording(prepared, RESEARCH, backends)
    assert caught.value.existing_id == first.id
    assert sorted(objects(s3_client, settings.s3.bucket)) == stored
    assert [r.id for r in rows(repo)] == [first.id]

    again = pipeline.store_recording(prepared, RESEARCH, backends,
                                     Attempt(allow_duplicate=True))
    assert again.status is Status.READY and again.id != first.id


def test_same_file_twice_in_one_batch(clips, settings, store, repo, s3_client, tmp_path):
    one = check(clips["mjpg"], "a.avi", settings, tmp_path / "1", analyse=False)
    two = check(clips["mjpg"], "b.avi", settings, tmp_path / "2", analyse=False)
    assert pipeline.find_duplicate(one.sha256, repo) is None  # nothing was stored yet
    pipeline.store_recording(one, RESEARCH, backends_of(settings, store, repo))
    with pytest.raises(DuplicateRecording):
        pipeline.store_recording(two, RESEARCH, backends_of(settings, store, repo))
    assert len(rows(repo)) == 1 and len(objects(s3_client, settings.s3.bucket)) == 3


# --- failures after the row exists ------------------------------------------------------------------


class MetadataGoesAway:
    """The server's records, whose store stops answering once the upload has started (mark_ready and after)."""

    def __init__(self, inner: ServerRecords, *, mark_failed_works: bool) -> None:
        self._inner = inner
        self.user_id = inner.user_id
        self._mark_failed_works = mark_failed_works

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def mark_ready(self, *args, **kwargs):
        raise MetadataUnavailable("The metadata store could not be reached.")

    def mark_failed(self, record_id: str, reason: str):
        if not self._mark_failed_works:
            raise MetadataUnavailable("The metadata store could not be reached.")
        return self._inner.mark_failed(record_id, reason)


def test_metadata_unreachable_after_upload_removes_the_objects(clips, settings, store, make_rows, s3_client,
                                                                tmp_path):
    """Our choice (lib/pipeline.py docstring): the objects go; the row ends failed, local copy kept."""
    user = make_rows()
    inner = user.repo
    server = MetadataGoesAway(user.server, mark_failed_works=True)
    prepared = check(clips["mjpg"], "a.avi", settings, tmp_path / "w", analyse=False)
    with pytest.raises(MetadataUnavailable, match="uploaded copy was removed"):
        pipeline.store_recording(prepared, RESEARCH, Backends(settings, store, inner, server))
    assert objects(s3_client, settings.s3.bucket) == []
    [row] = rows(inner)
    assert row.status is Status.FAILED and "metadata store" in (row.error or "")
    assert prepared.path.exists() and prepared.preview is not None and prepared.preview.exists()


def test_metadata_gone_for_good_leaves_a_pending_row_pointing_at_nothing(clips, settings, store, repo,
                                                                         s3_client, tmp_path):
    wrapped = MetadataGoesAway(server_of(repo), mark_failed_works=False)
    with pytest.raises(MetadataUnavailable):
        pipeline.process_upload(clips["mjpg"], "a.avi", RESEARCH, Backends(settings, store, repo, wrapped),
                                analyse=False)
    assert objects(s3_client, settings.s3.bucket) == []
    [row] = rows(repo)
    assert row.status is Status.PENDING  # reconciliation reports it once older than stale_pending_s


def test_interrupted_upload_is_cleaned_up_and_retry_replaces_the_failed_row(clips, settings, store, make_rows,
                                                                            s3_client, tmp_path):
    """A progress callback that raises is what a Streamlit rerun looks like mid-upload."""
    user = make_rows()
    repo = user.repo
    backends = Backends(settings, store, repo, user.server)
    prepared = check(clips["mjpg"], "a.avi", settings, tmp_path / "w", analyse=False)

    class Rerun(BaseException):
        pass

    def interrupt(p: Progress) -> None:
        if p.step is Step.UPLOAD_PREVIEW:
            raise Rerun

    attempt = str(uuid.uuid4())
    with pytest.raises(Rerun):
        pipeline.store_recording(prepared, RESEARCH, backends, Attempt(record_id=attempt),
                                 progress=interrupt)
    assert objects(s3_client, settings.s3.bucket) == []
    failed = repo.get(attempt)
    assert failed.status is Status.FAILED and failed.error == pipeline.INTERRUPTED
    assert prepared.path.exists()

    record = pipeline.store_recording(prepared, RESEARCH, backends,
                                      attempt=Attempt(replaces=attempt))
    assert record.status is Status.READY
    assert [r.id for r in rows(repo)] == [record.id]
    assert len(objects(s3_client, settings.s3.bucket)) == 3


def test_retry_never_removes_a_ready_record(clips, settings, store, repo, tmp_path):
    first = pipeline.process_upload(clips["mjpg"], "a.avi", RESEARCH, backends_of(settings, store, repo), analyse=False)
    prepared = check(clips["h264"], "b.mp4", settings, tmp_path / "w", analyse=False)
    pipeline.store_recording(prepared, RESEARCH, backends_of(settings, store, repo),
                             attempt=Attempt(replaces=first.id))
    assert repo.get(first.id).status is Status.READY


# --- demo seed ----------------------------------------------------------------------------------------------


def test_seed_demo_stores_a_ready_sample_with_a_pulse(settings, store, s3_client, tmp_path):
    from lib.auth import DemoAuth
    from lib.demo import DEMO_EMAIL, DEMO_PASSWORD, DemoBackends, seed_sample

    db = tmp_path / "demo.sqlite3"
    user_id = DemoAuth(db).ensure_account(DEMO_EMAIL, DEMO_PASSWORD)
    demo = DemoBackends(s3=settings.s3, db_path=db, workdir=tmp_path, email=DEMO_EMAIL,
                        password=DEMO_PASSWORD, user_id=user_id)
    seed_sample(settings, demo)

    [record] = rows(SqliteRepository(db, user_id))
    assert record.status is Status.READY and record.video is not None and record.video.lossless
    assert record.preview_key is not None  # FFV1 needs a browser proxy
    assert record.research.tags == ("demo", "synthetic")
    assert record.analysis is not None and abs(record.analysis["hr_bpm"] - 72) < 3
    assert len(objects(s3_client, settings.s3.bucket)) == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("sample-")] == []
