"""lib/direct_upload.py against SeaweedFS over real HTTP, as the browser would drive it:
start → PUT parts to the signed URLs → complete → finish (lib.pipeline.finish), plus resume, cancel,
the limits, and the upload job that carries a browser upload (lib.uploads)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from lib import direct_upload as du
from lib import pipeline, uploads
from lib.auth import DemoAuth
from lib.checks import CheckPool
from lib.errors import (
    AccessDenied,
    DuplicateRecording,
    FileTooLarge,
    IntegrityError,
    MetadataUnavailable,
    NotFound,
    QuotaExceeded,
    StorageUnavailable,
    UnsupportedMedia,
    ValidationError,
)
from lib.keys import user_prefix
from lib.pipeline import Backends, send
from lib.records import FileRecord, ResearchFields, Status
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.settings import MIB, Settings
from lib.storage import ObjectStore
from lib.studies import Role
from lib.transfer import SHA256_METADATA
from lib.uploads import JobStatus, UploadJob
from lib.workspace import Workspace
from tests.support import videos
from tests.support.checks import check_job
from tests.support.records import backends_of, server_of

RESEARCH = ResearchFields(subject_id="S07", session_label="baseline", notes="quiet room", tags=("rest",))
PART = 5 * MIB


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A raw AVI a little over two 5 MiB parts (so the upload has three)."""
    path = videos.write_opencv(tmp_path_factory.mktemp("clips") / "session one.avi", "\0\0\0\0", frames=24,
                               size=(640, 480))
    assert path is not None and path.stat().st_size > 2 * PART
    return path


@pytest.fixture
def settings(s3_settings) -> Settings:
    return Settings(mode="cloud", s3=s3_settings, max_upload_bytes=40 * MIB, quota_bytes=500 * MIB,
                    transfer_part_size_bytes=PART)


@pytest.fixture
def store(settings: Settings) -> ObjectStore:
    return ObjectStore.from_settings(settings)


@pytest.fixture
def repo(tmp_path: Path) -> SqliteRepository:
    return SqliteRepository(tmp_path / "meta.db", str(uuid.uuid4()))


def identity(path: Path, *, name: str | None = None, size: int | None = None) -> du.FileIdentity:
    head = hashlib.sha256(path.read_bytes()[: du.FINGERPRINT_HEAD_BYTES]).hexdigest()
    return du.FileIdentity.from_client({"name": name or path.name, "size": size or path.stat().st_size,
                                        "lastModified": int(path.stat().st_mtime * 1000), "headHash": head})


def put_parts(upload: du.DirectUpload, path: Path, numbers, backends: Backends) -> dict[int, str]:
    """What the browser does: PUT each part's bytes to its signed URL, keep the ETag."""
    urls = du.sign_parts(upload, numbers, backends)
    data = path.read_bytes()
    etags = {}
    for number, url in urls.items():
        start = (number - 1) * upload.part_size
        response = requests.put(url, data=data[start:start + upload.part_bytes(number)], timeout=30)
        response.raise_for_status()
        etags[number] = response.headers["ETag"].strip('"')
    return etags


@pytest.fixture(autouse=True)
def _pool(check_pool: CheckPool) -> Iterator[None]:
    global POOL
    POOL = check_pool
    yield


POOL: CheckPool | None = None
"""The session's check workers (the autouse fixture above sets it)."""


def checked(upload: du.DirectUpload, settings: Settings, store: ObjectStore, repo: SqliteRepository,
            workspace: Workspace, progress=None) -> UploadJob:
    """A check worker fetches the original through a signed link and checks it, as the Large files tab's job."""
    assert POOL is not None
    job = uploads.browser_job(upload, RESEARCH, consent=True)
    return check_job(job, backends_of(settings, store, repo), workspace, POOL, progress)


def finish(upload: du.DirectUpload, settings: Settings, store: ObjectStore, repo: SqliteRepository, *,
           progress=None, allow_duplicate: bool = False) -> FileRecord:
    """Everything after the bytes are in the bucket: check on a worker, then finish the pending row."""
    backends = backends_of(settings, store, repo)
    workspace = Workspace()
    try:
        job = checked(upload, settings, store, repo, workspace, progress)
        if job.status is JobStatus.NOT_ACCEPTED:
            raise ValidationError(job.message)
        assert job.prepared is not None and job.in_bucket is not None, job.message
        return pipeline.finish_in_bucket(job.prepared, job.in_bucket, job.in_bucket.record.research, backends,
                                         allow_duplicate=allow_duplicate, progress=progress)
    finally:
        workspace.close()


def open_uploads(s3_client, bucket: str) -> list[dict]:
    return s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


# --- limits and ownership ----------------------------------------------------------------------------------


def test_over_the_size_limit_nothing_is_started_or_signed(clip, settings, store, repo, s3_client):
    small = replace(settings, max_upload_bytes=10 * MIB)
    with pytest.raises(FileTooLarge, match="upload limit"):
        du.start_upload(identity(clip), backends_of(small, store, repo))
    assert open_uploads(s3_client, store.bucket) == []


def test_unsupported_extension_is_refused_before_signing(clip, settings, store, repo, s3_client):
    with pytest.raises(UnsupportedMedia):
        du.start_upload(identity(clip, name="notes.txt"), backends_of(settings, store, repo))
    assert open_uploads(s3_client, store.bucket) == []


def test_key_is_in_the_callers_prefix_and_other_keys_are_never_signed(clip, settings, store, repo):
    upload = du.start_upload(identity(clip, name="../../etc/x.avi"), backends_of(settings, store, repo))
    assert upload.key.startswith(user_prefix(repo.user_id))
    assert upload.key.endswith(f"/{upload.record_id}/original.avi")
    assert upload.part_count == 3
    someone_else = replace(upload, key=upload.key.replace(repo.user_id, str(uuid.uuid4())))
    with pytest.raises(ValidationError, match="no longer matches"):  # its row names the key: nothing is signed
        du.sign_parts(someone_else, [1], backends_of(settings, store, repo))
    with pytest.raises(Exception, match="part this upload does not have"):
        du.sign_parts(upload, [4], backends_of(settings, store, repo))


def test_a_browser_cannot_park_more_bytes_than_it_declared(clip, settings, store, repo):
    """Issue 14's unbounded unfinished upload: declare 1,000 bytes, then PUT 9 MB to the part URL."""
    tiny = du.start_upload(identity(clip, size=1_000), backends_of(settings, store, repo))
    url = du.sign_parts(tiny, [1], backends_of(settings, store, repo))[1]
    response = requests.put(url, data=b"\0" * (9 * MIB), timeout=60)
    assert response.status_code == 403
    assert store.list_parts(tiny.key, tiny.upload_id, owner=repo.user_id) == []
    assert requests.put(url, data=b"\0" * 1_000, timeout=30).ok  # the declared size goes in


def test_start_reserves_the_declared_size_before_anything_is_signed(clip, settings, store, repo, s3_client):
    """Issue 14, attack 3: the declared total is checked against the quota, and held by a pending row,
    before a part URL exists; an upload that does not fit starts nothing."""
    upload = du.start_upload(identity(clip), backends_of(settings, store, repo))
    row = repo.get(upload.record_id)
    assert (row.status, row.size_bytes, row.s3_key) == (Status.PENDING, clip.stat().st_size, upload.key)
    tight = replace(settings, quota_bytes=clip.stat().st_size + 10)
    with pytest.raises(QuotaExceeded, match="in unfinished uploads"):
        du.start_upload(replace(identity(clip), last_modified_ms=1), backends_of(tight, store, repo))
    assert len(open_uploads(s3_client, store.bucket)) == 1 and len(list(repo.iter_all())) == 1


def test_unfinished_uploads_count_against_the_quota(clip, settings, store, repo, s3_client):
    """Three unfinished uploads that together exceed the quota: the one that does not fit is refused."""
    quota = replace(settings, quota_bytes=int(2.5 * clip.stat().st_size))
    for modified in (1, 2):
        du.start_upload(replace(identity(clip), last_modified_ms=modified), backends_of(quota, store, repo))
    with pytest.raises(QuotaExceeded):
        du.start_upload(replace(identity(clip), last_modified_ms=3), backends_of(quota, store, repo))
    assert len(open_uploads(s3_client, store.bucket)) == 2


def test_an_upload_object_claiming_another_owner_or_size_gets_nothing(clip, settings, store, repo, tmp_path):
    """Issue 14, attack 7: whatever an upload object says (owner, key, size), the session's row decides."""
    upload = du.start_upload(identity(clip), backends_of(settings, store, repo))
    intruder = SqliteRepository(tmp_path / "meta.db", str(uuid.uuid4()))
    theirs = backends_of(settings, store, intruder)
    for forged in (upload, replace(upload, user_id=intruder.user_id)):
        with pytest.raises((AccessDenied, NotFound)):
            du.sign_parts(forged, [1], theirs)
        with pytest.raises((AccessDenied, NotFound)):
            du.complete_upload(forged, [], RESEARCH, theirs)
        with pytest.raises((AccessDenied, NotFound)):
            du.cancel_upload(forged, theirs)
    mine = backends_of(settings, store, repo)
    for forged in (replace(upload, size=upload.size * 10), replace(upload, part_size=upload.size)):
        with pytest.raises(ValidationError, match="no longer matches"):
            du.sign_parts(forged, [1], mine)
    assert repo.get(upload.record_id).status is Status.PENDING
    assert store.list_multipart_uploads(user_prefix(repo.user_id), owner=repo.user_id)  # still open


def test_abandoned_uploads_are_aborted_when_the_user_starts_another(clip, settings, store, repo, s3_client):
    """The app aborts its own stale multipart uploads (nothing sent for stale_pending_s): their parts go and
    their reservations end; uploads still sending are left alone."""
    quick = replace(settings, stale_pending_s=1)
    abandoned = du.start_upload(identity(clip), backends_of(quick, store, repo))
    put_parts(abandoned, clip, [1], backends_of(quick, store, repo))
    time.sleep(2.5)
    fresh = du.start_upload(replace(identity(clip), last_modified_ms=1), backends_of(quick, store, repo))
    assert [u["UploadId"] for u in open_uploads(s3_client, store.bucket)] == [fresh.upload_id]
    assert repo.get(abandoned.record_id).status is Status.FAILED
    assert "Pick the file again" in (repo.get(abandoned.record_id).error or "")
    again = du.start_upload(identity(clip), backends_of(settings, store, repo))  # the same file: a new upload
    assert again.record_id != abandoned.record_id and not again.done


# --- resume -----------------------------------------------------------------------------------------------


def test_choosing_the_same_file_again_resumes_with_the_done_parts(clip, settings, store, repo, s3_client):
    first = du.start_upload(identity(clip), backends_of(settings, store, repo))
    put_parts(first, clip, [1, 3], backends_of(settings, store, repo))
    # A new session (tab closed, server restarted): only S3 and the fingerprint are left.
    again = du.start_upload(identity(clip), backends_of(settings, store, repo))
    assert (again.record_id, again.key, again.upload_id) == (first.record_id, first.key, first.upload_id)
    assert again.resumed and [p.part_number for p in again.done] == [1, 3]
    assert again.missing == (2,)
    assert len(open_uploads(s3_client, store.bucket)) == 1
    # A different file (another last-modified time) is a different upload.
    other = du.start_upload(replace(identity(clip), last_modified_ms=1), backends_of(settings, store, repo))
    assert other.record_id != first.record_id and not other.done


# --- complete, verify, finish --------------------------------------------------------------------------------


def test_complete_and_finish_make_the_same_record_as_the_pipeline(clip, settings, store, repo, tmp_path):
    upload = du.start_upload(identity(clip), backends_of(settings, store, repo))
    etags = put_parts(upload, clip, [1, 2], backends_of(settings, store, repo))
    resumed = du.start_upload(identity(clip), backends_of(settings, store, repo))
    etags |= put_parts(resumed, clip, resumed.missing, backends_of(settings, store, repo))
    row = du.complete_upload(resumed, list(etags.items())[1:], RESEARCH, backends_of(settings, store, repo))
    assert row.status is Status.PENDING and row.s3_key == upload.key
    seen: list[pipeline.Progress] = []
    record = finish(replace(resumed, upload_id=None), settings, store, repo, progress=seen.append)
    steps = [p.step for p in seen]
    assert steps[0] is pipeline.Step.DOWNLOAD and seen[0].unit == "bytes"
    assert pipeline.Step.UPLOAD_ORIGINAL not in steps  # the browser sent it: the pipeline only checks it
    assert {pipeline.Step.UPLOAD_THUMBNAIL, pipeline.Step.VERIFY, pipeline.Step.READY} <= set(steps)
    assert store.head(record.s3_key, owner=repo.user_id).size == clip.stat().st_size

    # The server-side pipeline, same file, another user: the rows must match field for field.
    other = SqliteRepository(tmp_path / "meta.db", str(uuid.uuid4()))
    reference = pipeline.process_upload(clip, clip.name, RESEARCH, backends_of(settings, store, other))
    for name in ("status", "size_bytes", "sha256", "content_type", "original_name", "research", "video",
                 "error", "bucket"):
        assert getattr(record, name) == getattr(reference, name), name
    for name in ("thumbnail_key", "preview_key"):
        assert (getattr(record, name) is None) == (getattr(reference, name) is None)
        assert getattr(record, name).rsplit("/", 1)[1] == getattr(reference, name).rsplit("/", 1)[1]
    assert (record.analysis is None) == (reference.analysis is None)
    assert record.thumbnail_key.startswith(record.s3_key.rsplit("/", 1)[0])
    # Choosing the file once more: it is stored, so it is a new upload, and finishing it reports the duplicate.
    again = du.start_upload(identity(clip), backends_of(settings, store, repo))
    assert again.record_id != record.id and not again.resumed


def test_complete_refuses_missing_parts_and_keeps_the_upload_open(clip, settings, store, repo, s3_client):
    upload = du.start_upload(identity(clip), backends_of(settings, store, repo))
    etags = put_parts(upload, clip, [1, 2], backends_of(settings, store, repo))
    with pytest.raises(IntegrityError, match="Part 3"):
        du.complete_upload(upload, etags.items(), RESEARCH, backends_of(settings, store, repo))
    assert len(open_uploads(s3_client, store.bucket)) == 1
    assert repo.usage().total_count == 0


def test_complete_verifies_the_size_with_head(clip, settings, store, repo, s3_client, monkeypatch):
    upload = du.start_upload(identity(clip), backends_of(settings, store, repo))
    etags = put_parts(upload, clip, [1, 2, 3], backends_of(settings, store, repo))
    monkeypatch.setattr(du, "_object_size", lambda *_a: 1)  # the bucket reports a different size
    with pytest.raises(IntegrityError, match="removed"):
        du.complete_upload(upload, etags.items(), RESEARCH, backends_of(settings, store, repo))
    assert s3_client.list_objects_v2(Bucket=store.bucket).get("KeyCount", 0) == 0
    assert repo.get(upload.record_id).status is Status.FAILED


def test_a_duplicate_is_reported_and_kept_until_the_researcher_decides(clip, settings, store, repo, s3_client):
    def sent_once() -> du.DirectUpload:
        backends = backends_of(settings, store, repo)
        upload = du.start_upload(identity(clip), backends)
        du.complete_upload(upload, put_parts(upload, clip, upload.missing, backends).items(), RESEARCH, backends)
        return replace(upload, upload_id=None)

    first = finish(sent_once(), settings, store, repo)
    second = sent_once()
    with pytest.raises(DuplicateRecording, match="already stored"):
        finish(second, settings, store, repo)
    # Resume after a closed tab lands on the finish step: nothing needs sending again.
    assert du.start_upload(identity(clip), backends_of(settings, store, repo)).uploaded
    du.cancel_upload(second, backends_of(settings, store, repo))
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=store.bucket).get("Contents", [])]
    assert all(first.id in k for k in keys)
    assert repo.usage().total_count == 1


def test_a_file_that_is_not_a_video_is_removed_with_the_reason(tmp_path, settings, store, repo, s3_client):
    fake = tmp_path / "fake.avi"
    fake.write_bytes(b"this is a text file, not a video\n" * 1000)
    upload = du.start_upload(identity(fake), backends_of(settings, store, repo))
    backends = backends_of(settings, store, repo)
    du.complete_upload(upload, put_parts(upload, fake, [1], backends).items(), RESEARCH, backends)
    with pytest.raises(ValidationError):
        finish(replace(upload, upload_id=None), settings, store, repo)
    assert s3_client.list_objects_v2(Bucket=store.bucket).get("KeyCount", 0) == 0
    assert repo.get(upload.record_id).status is Status.FAILED


# --- cancel ------------------------------------------------------------------------------------------------------


def test_cancel_aborts_the_multipart_upload(clip, settings, store, repo, s3_client):
    upload = du.start_upload(identity(clip), backends_of(settings, store, repo))
    put_parts(upload, clip, [1], backends_of(settings, store, repo))
    du.cancel_upload(upload, backends_of(settings, store, repo))
    assert open_uploads(s3_client, store.bucket) == []
    du.cancel_upload(upload, backends_of(settings, store, repo))  # twice is harmless
    fresh = du.start_upload(identity(clip), backends_of(settings, store, repo))
    assert fresh.upload_id != upload.upload_id and not fresh.done


# --- failures once the bytes are in the bucket (policy: keep the original and the pending row) -------------


def sent(clip: Path, settings: Settings, store: ObjectStore, repo: SqliteRepository) -> du.DirectUpload:
    """A browser upload whose parts are in and assembled: only the finishing step is left."""
    upload = du.start_upload(identity(clip), backends_of(settings, store, repo))
    backends = backends_of(settings, store, repo)
    du.complete_upload(upload, put_parts(upload, clip, upload.missing, backends).items(), RESEARCH, backends)
    return replace(upload, upload_id=None)


def keys_in_bucket(s3_client, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_a_failed_derivative_upload_keeps_the_original_for_retry(clip, settings, store, repo, s3_client,
                                                                 monkeypatch):
    upload = sent(clip, settings, store, repo)
    real = send.upload_file

    def flaky(store_, target, *args, **kwargs):
        if target.key.endswith("preview.mp4"):  # after the thumbnail went up
            raise StorageUnavailable("The storage service is busy.")
        return real(store_, target, *args, **kwargs)

    monkeypatch.setattr(send, "upload_file", flaky)
    with pytest.raises(StorageUnavailable):
        finish(upload, settings, store, repo)
    assert keys_in_bucket(s3_client, store.bucket) == [upload.key]  # derivatives gone, original kept
    assert repo.get(upload.record_id).status is Status.PENDING
    # Choosing the file again lands on the finishing step; Retry (finish again) stores it.
    assert du.start_upload(identity(clip), backends_of(settings, store, repo)).uploaded
    monkeypatch.setattr(send, "upload_file", real)
    record = finish(upload, settings, store, repo)
    assert record.status is Status.READY and record.thumbnail_key and record.sha256
    tags = s3_client.get_object_tagging(Bucket=store.bucket, Key=record.s3_key)["TagSet"]
    assert tags == [{"Key": SHA256_METADATA, "Value": record.sha256}]


def test_metadata_unreachable_when_marking_ready_keeps_the_original(clip, settings, store, repo, s3_client,
                                                                    monkeypatch):
    upload = sent(clip, settings, store, repo)

    def unreachable(*_a, **_k):
        raise MetadataUnavailable("down")

    monkeypatch.setattr(SqliteServerRecords, "mark_ready", unreachable)
    with pytest.raises(MetadataUnavailable, match="stays in the bucket"):
        finish(upload, settings, store, repo)
    assert keys_in_bucket(s3_client, store.bucket) == [upload.key]
    assert repo.get(upload.record_id).status is Status.PENDING


def test_an_original_changed_after_it_was_checked_is_not_marked_ready(clip, settings, store, repo, s3_client,
                                                                      tmp_path):
    upload = sent(clip, settings, store, repo)
    backends, workspace = backends_of(settings, store, repo), Workspace()
    job = checked(upload, settings, store, repo, workspace)
    prepared, original = job.prepared, job.in_bucket
    s3_client.put_object(Bucket=store.bucket, Key=upload.key, Body=b"x" * clip.stat().st_size)
    with pytest.raises(IntegrityError, match="changed in the bucket"):
        pipeline.finish_in_bucket(prepared, original, RESEARCH, backends)
    assert repo.get(upload.record_id).status is Status.PENDING
    assert keys_in_bucket(s3_client, store.bucket) == [upload.key]


def test_discard_after_a_failed_finish_leaves_nothing(clip, settings, store, repo, s3_client, monkeypatch):
    upload = sent(clip, settings, store, repo)
    monkeypatch.setattr(SqliteServerRecords, "mark_ready",
                        lambda *_a, **_k: (_ for _ in ()).throw(MetadataUnavailable("x")))
    with pytest.raises(MetadataUnavailable):
        finish(upload, settings, store, repo)
    du.cancel_upload(upload, backends_of(settings, store, repo))
    assert keys_in_bucket(s3_client, store.bucket) == []
    assert repo.usage().total_count == 0 and not list(repo.iter_all())


# --- the same file again after a delete (issue 21 item 2) ---------------------------------------------------


def test_a_new_pick_after_a_delete_never_reuses_the_lost_record_id(clip, settings, store, repo, s3_client):
    from lib.library import delete_records

    first = finish(sent(clip, settings, store, repo), settings, store, repo)
    assert delete_records(store, repo, server_of(repo), [first.id]).ok
    again = du.start_upload(identity(clip), backends_of(settings, store, repo), retired=frozenset({first.id}))
    assert again.record_id != first.id and not again.resumed and not again.done
    record = finish(_complete(again, clip, settings, store, repo), settings, store, repo)
    assert record.status is Status.READY and [r.id for r in repo.iter_all()] == [record.id]


def test_resume_finds_the_open_upload_whatever_its_generation(clip, settings, store, repo):
    skipped = du.record_id_for(repo.user_id, identity(clip).fingerprint, 0)
    later = du.start_upload(identity(clip), backends_of(settings, store, repo), retired=frozenset({skipped}))
    put_parts(later, clip, [1], backends_of(settings, store, repo))
    # Another session knows nothing of the retired id; the open upload is still found, not a fresh one at 0.
    resumed = du.start_upload(identity(clip), backends_of(settings, store, repo))
    assert (resumed.record_id, resumed.upload_id) == (later.record_id, later.upload_id)
    assert resumed.resumed and [p.part_number for p in resumed.done] == [1]


def _complete(upload: du.DirectUpload, clip: Path, settings: Settings, store: ObjectStore,
              repo: SqliteRepository) -> du.DirectUpload:
    backends = backends_of(settings, store, repo)
    du.complete_upload(upload, put_parts(upload, clip, upload.missing, backends).items(), RESEARCH, backends)
    return replace(upload, upload_id=None)


# --- the upload job that carries a browser upload -----------------------------------------------------------


def test_a_browser_job_is_checked_then_stored_then_noticed_deleted(clip, settings, store, repo, monkeypatch):
    backends, workspace = backends_of(settings, store, repo), Workspace()
    upload = sent(clip, settings, store, repo)
    job = uploads.browser_job(upload, ResearchFields(subject_id="S08"), consent=True)
    assert POOL is not None
    job = check_job(job, backends, workspace, POOL)
    assert job.status is JobStatus.WAITING and job.doubts  # blank frames: no face, no pulse
    assert not job.store_when_checked(require_consent=True)  # so it waits for "Store it anyway"
    job = job.with_input(job.research, job.consent, keep_doubtful=True)
    assert job.store_when_checked(require_consent=True)
    assert job.attempt_id == upload.record_id and job.in_bucket is not None

    real = send.upload_file
    monkeypatch.setattr(send, "upload_file", lambda *_a, **_k: (_ for _ in ()).throw(StorageUnavailable("busy")))
    failed = uploads.store(job, backends, workspace)
    assert failed.status is JobStatus.UPLOAD_FAILED and "busy" in failed.message
    assert repo.get(upload.record_id).status is Status.PENDING  # the original and its row wait for Retry
    monkeypatch.setattr(send, "upload_file", real)
    stored = uploads.store(failed, backends, workspace)
    assert stored.status is JobStatus.READY and stored.record.id == upload.record_id
    assert stored.record.research.subject_id == "S08"  # the Large files form's fields reached the row
    assert not workspace.slot(job.id).exists()  # the fetched copy is gone

    from lib.library import delete_records

    assert delete_records(store, repo, server_of(repo), [stored.record.id]).ok
    assert uploads.confirm_stored(stored, repo, now=stored.confirmed_at + uploads.RECHECK_STORED_S).status \
        is JobStatus.DELETED
    workspace.close()


def test_discarding_a_browser_job_removes_its_original_and_row(clip, settings, store, repo, s3_client):
    backends, workspace = backends_of(settings, store, repo), Workspace()
    upload = sent(clip, settings, store, repo)
    assert POOL is not None
    job = check_job(uploads.browser_job(upload, RESEARCH, consent=False), backends, workspace, POOL)
    gone = uploads.dismiss(job, backends, workspace)
    assert gone.status is JobStatus.DISCARDED and gone.retired_record_id == upload.record_id
    assert keys_in_bucket(s3_client, store.bucket) == [] and not list(repo.iter_all())
    workspace.close()


# --- into a study ------------------------------------------------------------------------------------------


def test_a_large_file_goes_into_the_chosen_study_and_is_resumed_there_only(clip, settings, store, tmp_path,
                                                                           s3_client):
    """The Large files tab uploads into the study picked above it: its key, row and card are the study's;
    the same file in the personal space is another upload; another member's open upload is left alone."""
    db = tmp_path / "lab.sqlite3"
    owner, member = (SqliteRepository(db, DemoAuth(db).sign_up(f"{n}@lab.test", "pw-0123456789").session.user_id)
                     for n in ("owner", "member"))
    study = owner.create_study("Sleep", "").id
    owner.add_member(study, "member@lab.test", Role.MEMBER)
    in_study = replace(backends_of(settings, store, member), study_id=study)
    upload = du.start_upload(identity(clip), in_study)
    assert upload.study_id == study and upload.key.startswith(f"studies/{study}/")
    assert member.get(upload.record_id).study_id == study
    etags = put_parts(upload, clip, [1], in_study)
    mine = du.start_upload(identity(clip), backends_of(settings, store, member))  # personal: a separate upload
    assert mine.record_id != upload.record_id and mine.study_id is None and not mine.done
    for elsewhere in (backends_of(settings, store, member), replace(in_study, study_id=None)):
        with pytest.raises(AccessDenied):  # an upload is signed only in the space it was started in
            du.sign_parts(upload, [2], elsewhere)
    # The owner starting their own upload in the study does not resume, abort or claim the member's.
    owners = du.start_upload(replace(identity(clip), last_modified_ms=7), replace(backends_of(settings, store, owner),
                                                                                  study_id=study))
    assert owners.record_id != upload.record_id
    again = du.start_upload(identity(clip), in_study)  # the member picks the file again: resumed in the study
    assert (again.record_id, again.upload_id, [p.part_number for p in again.done]) == (
        upload.record_id, upload.upload_id, [1])
    etags |= put_parts(again, clip, again.missing, in_study)
    du.complete_upload(again, etags.items(), RESEARCH, in_study)
    job = uploads.browser_job(replace(again, upload_id=None, done=()), RESEARCH, consent=True)
    assert job.study_id == study  # its card checks and stores it in the study
    assert {u["Key"].split("/")[0] for u in open_uploads(s3_client, store.bucket)} == {"recordings", "studies"}
