"""Issue 10's fault suite: storage down (during an upload, for listing, playback, delete and
re-analysis), the metadata store down (SQLite unreadable, the Supabase stand-in stopped) during an
upload and for listing, the session expiring in the middle of an upload, and the disk filling up
under the temporary copy.

Every case asserts a clear message (a PulseVaultError with words a researcher can act on, no
traceback, no key, no URL), then brings the failed service back and reconciles: no orphan object
and no ``ready`` row without its object. Page-level disk-full cases are in
tests/app/test_bad_input_pages.py.
"""

from __future__ import annotations

import errno
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer
from supabase import create_client

from lib import library, media, pipeline, transfer
from lib import workspace as workspaces
from lib.auth import SupabaseAuth
from lib.errors import (
    LocalDiskError,
    MetadataUnavailable,
    PulseVaultError,
    SessionExpired,
    StorageUnavailable,
)
from lib.pipeline import Attempt, Backends, Progress, Step
from lib.records import ListQuery, ResearchFields, Status
from lib.repository import (
    Repository,
    ServerRecords,
    SqliteRepository,
    SupabaseRepository,
    SupabaseServerRecords,
    new_service_client,
)
from lib.settings import MIB, S3Settings, Settings, SupabaseSettings
from lib.storage import ObjectStore
from lib.usage import reconcile, storage_health
from lib.workspace import Workspace
from tests.support import videos
from tests.support.journey import Holdings, assert_consistent, object_keys
from tests.support.journey_net import Switch
from tests.support.records import server_of
from tests.support.s3 import reset_moto_buckets
from tests.support.services import free_port
from tests.support.supabase.server import SupabaseStandin

BUCKET = "pulsevault-faults"
PASSWORD = "fault-pass-123"
RESEARCH = ResearchFields(subject_id="S07", session_label="fault")


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    # How often lib.transfer retries is its own business; here it only has to give up soon.
    monkeypatch.setattr(transfer, "BACKOFF_BASE_S", 0.01)
    monkeypatch.setattr(transfer, "BACKOFF_CAP_S", 0.02)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = videos.opencv_video(tmp_path_factory.mktemp("faults"), "mjpg", frames=20)
    assert path is not None
    return path


# --- an S3 server that can be stopped and started again on the same port ---------------------------------


class StoppableS3:
    """moto's server on a fixed port; its data lives in the process, so it survives a restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: ThreadedMotoServer | None = None
        self.start()

    def start(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def up(self) -> bool:
        return self._server is not None


@dataclass(frozen=True)
class World:
    s3: StoppableS3
    settings: Settings
    store: ObjectStore
    """One attempt per request: a dead endpoint fails at once instead of after botocore's back-off."""
    repo: Repository
    server: ServerRecords

    @property
    def backends(self) -> Backends:
        return Backends(self.settings, self.store, self.repo, self.server)

    def prepare(self, path: Path, workdir: Path) -> pipeline.PreparedRecording:
        return pipeline.check_recording(path, "fault.avi", max_bytes=self.settings.max_upload_bytes,
                                        workdir=workdir, analyse=False)

    def upload(self, prepared, progress: Callable[[Progress], None] | None = None, replaces: str | None = None):
        return pipeline.store_recording(prepared, RESEARCH, self.backends, Attempt(replaces=replaces),
                                        progress=progress)

    def check(self) -> None:
        """Bring storage back if it is down, then reconcile."""
        if not self.s3.up:
            self.s3.start()
        assert_consistent(self.store, self.repo, self.settings)


def make_store(s3: StoppableS3) -> tuple[Settings, ObjectStore]:
    s3_settings = S3Settings(bucket=BUCKET, region="us-east-1", access_key_id="testing",
                             secret_access_key="testing-secret", endpoint_url=s3.url)
    settings = Settings(mode="cloud", s3=s3_settings, max_upload_bytes=20 * MIB, quota_bytes=100 * MIB)
    return settings, ObjectStore(s3_settings, settings=settings, max_attempts=1)


@pytest.fixture
def s3() -> Iterator[StoppableS3]:
    server = StoppableS3()
    reset_moto_buckets(server.url, create=BUCKET)
    yield server
    server.stop()


@pytest.fixture
def world(s3: StoppableS3, tmp_path: Path) -> World:
    settings, store = make_store(s3)
    repo = SqliteRepository(tmp_path / "meta.db", str(uuid.uuid4()))
    return World(s3, settings, store, repo, server_of(repo))


def assert_clear(exc: BaseException, *words: str) -> None:
    text = str(exc)
    assert isinstance(exc, PulseVaultError), repr(exc)
    for word in words:
        assert word.lower() in text.lower(), (word, text)
    for leak in ("Traceback", "recordings/", "X-Amz", "http://", "127.0.0.1"):
        assert leak not in text, (leak, text)


def at_step(step: Step, action: Callable[[], None]) -> Callable[[Progress], None]:
    """A progress callback that runs ``action`` once, the first time ``step`` is reported."""
    done = threading.Event()

    def callback(progress: Progress) -> None:
        if progress.step is step and not done.is_set():
            done.set()
            action()

    return callback


# --- storage down ------------------------------------------------------------------------------------------


def test_storage_down_before_the_upload(world: World, clip: Path, tmp_path: Path) -> None:
    prepared = world.prepare(clip, tmp_path / "w")
    world.s3.stop()
    with pytest.raises(StorageUnavailable) as caught:
        world.upload(prepared)
    assert_clear(caught.value, "storage service")
    [row] = world.repo.iter_all()
    assert row.status is Status.FAILED and "storage service" in (row.error or "")
    assert prepared.path.exists()  # kept for Retry
    world.check()
    assert object_keys(world.store, world.repo.user_id) == set()


def test_storage_down_in_the_middle_of_an_upload(world: World, clip: Path, tmp_path: Path) -> None:
    """The original is in; storage dies before the thumbnail. Clean-up cannot reach it either, so the
    original stays under the record's prefix beside a ``failed`` row (never ``ready``); Discard
    (delete) removes it once storage is back, and Retry stores the recording."""
    prepared = world.prepare(clip, tmp_path / "w")
    with pytest.raises(StorageUnavailable) as caught:
        world.upload(prepared, progress=at_step(Step.UPLOAD_THUMBNAIL, world.s3.stop))
    assert_clear(caught.value, "storage service")
    [row] = world.repo.iter_all()
    assert row.status is Status.FAILED
    world.check()
    left = object_keys(world.store, world.repo.user_id)
    assert left <= {row.s3_key}, left

    report = library.delete_records(world.store, world.repo, world.server, [row.id])
    assert report.ok, report.summary()
    assert Holdings.of(world.store, world.repo) == Holdings(frozenset(), ())
    record = world.upload(prepared)
    assert record.status is Status.READY
    world.check()


def test_storage_down_for_listing_playback_delete_and_reanalysis(world: World, clip: Path) -> None:
    record = pipeline.process_upload(clip, "stored.avi", RESEARCH, world.backends, analyse=False)
    before = Holdings.of(world.store, world.repo)
    world.s3.stop()

    health = storage_health(world.store)
    assert not health.ok and "storage service" in health.message
    # Listing My files reads metadata only, and links are signed locally: the page still lists.
    page = world.repo.list(ListQuery())
    assert [r.id for r in page.records] == [record.id]
    assert library.playback_url(world.store, world.repo, record.id).url
    # Deleting lists the record's objects first: with storage down nothing changes.
    report = library.delete_records(world.store, world.repo, world.server, [record.id])
    assert not report.ok and report.deleted == ()
    assert "storage service" in report.failed[0].reason and "http://" not in report.summary()
    assert world.repo.get(record.id).status is Status.READY
    with pytest.raises(StorageUnavailable) as caught:
        library.reanalyse(world.store, world.repo, world.server, record.id)
    assert_clear(caught.value, "storage service")
    with pytest.raises(StorageUnavailable) as caught:
        reconcile(world.store, world.repo, world.repo.user_id, world.settings)
    assert_clear(caught.value, "storage service")

    world.check()
    assert Holdings.of(world.store, world.repo) == before


# --- metadata down (SQLite) --------------------------------------------------------------------------------


def break_sqlite(world: World) -> Callable[[], None]:
    """The database file becomes unreachable (as if its disk were unmounted) for the user's repository
    and the server's records alike; returns the repair."""
    stores = (world.repo, world.server)
    real = world.repo.db_path

    def restore() -> None:
        for store in stores:
            store.db_path = real

    for store in stores:
        store.db_path = str(Path(real).parent / "unmounted" / "meta.db")
    return restore


def test_sqlite_unreadable_before_the_upload(world: World, clip: Path, tmp_path: Path) -> None:
    prepared = world.prepare(clip, tmp_path / "w")
    assert isinstance(world.repo, SqliteRepository)
    restore = break_sqlite(world)
    with pytest.raises(MetadataUnavailable) as caught:
        world.upload(prepared)
    assert_clear(caught.value, "database")
    with pytest.raises(MetadataUnavailable) as caught:
        world.repo.list(ListQuery())
    assert_clear(caught.value, "database")
    restore()
    world.check()
    assert Holdings.of(world.store, world.repo) == Holdings(frozenset(), ())


def test_sqlite_unreadable_in_the_middle_of_an_upload(world: World, clip: Path, tmp_path: Path) -> None:
    """The bytes arrive but ``ready`` cannot be written: they are removed again; the row stays pending."""
    prepared = world.prepare(clip, tmp_path / "w")
    assert isinstance(world.repo, SqliteRepository)
    restores: list[Callable[[], None]] = []
    with pytest.raises(MetadataUnavailable) as caught:
        world.upload(prepared, progress=at_step(Step.UPLOAD_ORIGINAL,
                                                lambda: restores.append(break_sqlite(world))))
    assert_clear(caught.value, "fault.avi", "metadata store could not be reached", "Retry")
    restores[0]()
    world.check()
    [row] = world.repo.iter_all()
    assert row.status is Status.PENDING and object_keys(world.store, world.repo.user_id) == set()
    record = world.upload(prepared, replaces=row.id)  # Retry replaces the leftover row
    assert [r.id for r in world.repo.iter_all()] == [record.id]
    world.check()


# --- metadata down (Supabase stand-in stopped) and expired sessions ---------------------------------------


class ReachableStandin:
    """The stand-in behind a :class:`Switch`: ``stop`` makes it unreachable for every client at once."""

    def __init__(self, live: SupabaseStandin) -> None:
        self.live = live
        host, port = live.url.removeprefix("http://").split(":")
        self.switch = Switch((host, int(port)))

    @property
    def url(self) -> str:
        return self.switch.url

    def stop(self) -> None:
        self.switch.cut()

    def start(self) -> None:
        self.switch.restore()


@pytest.fixture
def standin(supabase_standin: SupabaseStandin) -> Iterator[ReachableStandin]:
    reachable = ReachableStandin(supabase_standin)
    yield reachable
    reachable.stop()


def supabase_server(standin: ReachableStandin, user_id: str) -> SupabaseServerRecords:
    """The server's records for the user, through the same switch (stopping it cuts them off too)."""
    settings = SupabaseSettings(standin.url, standin.live.anon_key, standin.live.service_role_key)
    return SupabaseServerRecords(new_service_client(settings), user_id)


def supabase_user(standin: ReachableStandin) -> tuple[SupabaseAuth, str, str]:
    """A fresh confirmed user signed in through SupabaseAuth: (auth, user id, e-mail)."""
    email = f"{uuid.uuid4().hex[:10]}@lab.test"
    user_id = standin.live.create_user(email, PASSWORD)
    auth = SupabaseAuth(create_client(standin.url, standin.live.anon_key))
    auth.sign_in(email, PASSWORD)
    return auth, user_id, email


def test_supabase_down_in_the_middle_of_an_upload(s3: StoppableS3, standin: ReachableStandin, clip: Path,
                                                  tmp_path: Path) -> None:
    settings, store = make_store(s3)
    auth, user_id, _email = supabase_user(standin)
    world = World(s3, settings, store, SupabaseRepository(auth.client, user_id), supabase_server(standin, user_id))
    prepared = world.prepare(clip, tmp_path / "w")
    with pytest.raises(MetadataUnavailable) as caught:
        world.upload(prepared, progress=at_step(Step.UPLOAD_ORIGINAL, standin.stop))
    assert_clear(caught.value, "fault.avi", "metadata store could not be reached", "Retry")
    # Listing while it is down: a clear message too.
    with pytest.raises(MetadataUnavailable) as caught:
        world.repo.list(ListQuery())
    assert_clear(caught.value, "could not be reached")
    standin.start()
    world.check()
    [row] = world.repo.iter_all()
    assert row.status is Status.PENDING and object_keys(store, user_id) == set()


def test_session_expires_in_the_middle_of_an_upload(s3: StoppableS3, standin: ReachableStandin, clip: Path,
                                                    tmp_path: Path) -> None:
    """The access token runs out while the bytes travel and its refresh token is revoked. The facts are
    the server's to write (service role, for the user the session was verified as when the upload
    began), so the upload still ends ready; the app's next run refuses the session: sign in again."""
    settings, store = make_store(s3)
    prepared = pipeline.check_recording(clip, "fault.avi", max_bytes=settings.max_upload_bytes,
                                        workdir=tmp_path / "w", analyse=False)
    lifetime_s = 4
    standin.live.set_access_token_lifetime(lifetime_s)
    auth, user_id, email = supabase_user(standin)
    session = auth.client.auth.get_session()
    assert session is not None
    expires_at = session.expires_at or 0

    def expire_and_revoke() -> None:
        with standin.live.state.lock:  # the refresh token is revoked as a sign-out elsewhere would
            standin.live.state.refresh_tokens.clear()
        time.sleep(max(0.0, expires_at - time.time()) + 1.1)

    world = World(s3, settings, store, SupabaseRepository(auth.client, user_id), supabase_server(standin, user_id))
    stored = world.upload(prepared, progress=at_step(Step.UPLOAD_ORIGINAL, expire_and_revoke))
    assert stored.status is Status.READY
    with pytest.raises(SessionExpired) as caught:  # the user's own token reads nothing any more
        world.repo.list(ListQuery())
    assert_clear(caught.value, "session has expired", "sign in again")

    from lib.auth import Session, _from_supabase

    held: Session = _from_supabase(session)
    with pytest.raises(SessionExpired) as refused:  # what the app's next run does: refresh, refused
        auth.ensure_fresh(held)
    assert_clear(refused.value, "sign in again")

    standin.live.set_access_token_lifetime(3600)
    fresh = SupabaseAuth(create_client(standin.url, standin.live.anon_key))
    fresh.sign_in(email, PASSWORD)
    again = World(s3, settings, store, SupabaseRepository(fresh.client, user_id), supabase_server(standin, user_id))
    again.check()
    assert [(r.id, r.status) for r in again.repo.iter_all()] == [(stored.id, Status.READY)]


# --- disk full under the temporary copy ----------------------------------------------------------------------


def disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_saving_the_local_copy(monkeypatch: pytest.MonkeyPatch, clip: Path, tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    monkeypatch.setattr(workspaces.shutil, "copyfileobj", disk_full)
    with clip.open("rb") as stream, pytest.raises(LocalDiskError) as caught:
        workspace.save("file-1", stream, "rec.avi")
    assert "ran out of disk space" in str(caught.value) and "rec.avi" in str(caught.value)
    workspace.close()
    assert not workspace.root.exists()  # nothing of the partial copy is left behind


def test_disk_full_while_making_the_derivatives(world: World, monkeypatch: pytest.MonkeyPatch, clip: Path,
                                                tmp_path: Path) -> None:
    monkeypatch.setattr(media, "make_thumbnail", disk_full)
    try:
        with pytest.raises(PulseVaultError) as caught:
            pipeline.process_upload(clip, "full.avi", RESEARCH, world.backends, analyse=False)
        assert_clear(caught.value, "space")
    finally:
        world.check()
        assert Holdings.of(world.store, world.repo) == Holdings(frozenset(), ())
