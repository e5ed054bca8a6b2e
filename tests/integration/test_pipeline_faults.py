"""S3 unreachable in the middle of a multipart upload: the pipeline stops with a clear message,
aborts the multipart upload, and leaves no object behind and no row that says ready."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from pathlib import Path

import pytest

from lib import pipeline, transfer
from lib.errors import StorageUnavailable
from lib.pipeline import Attempt
from lib.records import ResearchFields, Status
from lib.repository import SqliteRepository
from lib.settings import MIB, S3Settings, Settings
from lib.storage import MIN_PART_SIZE, ObjectStore
from tests.support import videos
from tests.support.records import backends_of

PART = MIN_PART_SIZE


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    # The retry schedule is lib.transfer's business; here it only needs to give up soon.
    monkeypatch.setattr(transfer, "BACKOFF_BASE_S", 0.01)
    monkeypatch.setattr(transfer, "BACKOFF_CAP_S", 0.02)


@pytest.fixture(scope="module")
def big_avi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uncompressed AVI a little over one minimum part: two parts."""
    folder = tmp_path_factory.mktemp("big")
    path = videos.opencv_video(folder, "raw", frames=50, size=(320, 240))
    if path is None:
        pytest.skip("this OpenCV wheel cannot write uncompressed AVI")
    assert PART < path.stat().st_size < 2 * PART
    return path


def _settings(s3: S3Settings) -> Settings:
    return Settings(mode="cloud", s3=s3, max_upload_bytes=50 * MIB, quota_bytes=500 * MIB,
                    transfer_concurrency=1, transfer_part_size_bytes=PART)


@pytest.fixture
def repo(tmp_path: Path) -> SqliteRepository:
    return SqliteRepository(tmp_path / "demo.db", str(uuid.uuid4()))


def _objects(s3_client, bucket: str) -> list[str]:
    return [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _open_uploads(s3_client, bucket: str) -> list[str]:
    return [u["Key"] for u in s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_part_urls_unreachable_mid_multipart(big_avi, s3_settings, s3_client, repo, tmp_path, monkeypatch):
    """The data path dies after the first part (the control path still answers): abort and delete work."""
    settings = _settings(s3_settings)
    store = ObjectStore.from_settings(settings)
    real_presign = store.presign_part
    dead = f"http://127.0.0.1:{_closed_port()}"

    def presign_part(key, upload_id, part_number, **kwargs):
        url = real_presign(key, upload_id, part_number, **kwargs)
        return url if part_number == 1 else url.replace(s3_settings.endpoint_url, dead)

    monkeypatch.setattr(store, "presign_part", presign_part)
    prepared = pipeline.check_recording(big_avi, "long take.avi", max_bytes=settings.max_upload_bytes,
                                        workdir=tmp_path / "w", analyse=False)
    with pytest.raises(StorageUnavailable, match="connection to the storage service dropped") as caught:
        pipeline.store_recording(prepared, ResearchFields(), backends_of(settings, store, repo))
    assert "127.0.0.1" not in str(caught.value)
    assert _objects(s3_client, s3_settings.bucket) == []
    assert _open_uploads(s3_client, s3_settings.bucket) == []  # aborted, no parts linger
    [row] = repo.iter_all()
    assert row.status is Status.FAILED and "storage service" in (row.error or "")
    assert prepared.path.exists()  # kept for Retry

    monkeypatch.setattr(store, "presign_part", real_presign)
    record = pipeline.store_recording(prepared, ResearchFields(), backends_of(settings, store, repo),
                                      Attempt(replaces=row.id))
    assert record.status is Status.READY and [r.id for r in repo.iter_all()] == [record.id]


class CuttableProxy:
    """A TCP forwarder to the S3 server that is cut (every connection dropped, the port closed)
    once ``cut_after`` bytes have gone upstream: the network dies in the middle of a part."""

    def __init__(self, target: tuple[str, int], *, cut_after: int) -> None:
        self._target = target
        self._budget = cut_after
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(a, b, up), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while data := source.recv(65536):
                if upstream:
                    with self._lock:
                        self._budget -= len(data)
                        spent = self._budget < 0
                    if spent:
                        self.cut()
                        return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def test_storage_gone_mid_multipart(big_avi, s3_settings, s3_client, repo, tmp_path):
    """Everything on the S3 side goes (data and control path): clean-up cannot reach it either,
    yet nothing is stored as an object and the row says failed with the reason."""
    host, port = s3_settings.endpoint_url.removeprefix("http://").split(":")
    proxy = CuttableProxy((host, int(port)), cut_after=3 * MIB)  # inside part 1 of 2
    via_proxy = S3Settings(bucket=s3_settings.bucket, region=s3_settings.region,
                           access_key_id=s3_settings.access_key_id,
                           secret_access_key=s3_settings.secret_access_key,
                           endpoint_url=f"http://127.0.0.1:{proxy.port}")
    settings = _settings(via_proxy)
    store = ObjectStore(via_proxy, settings=settings, max_attempts=1)
    prepared = pipeline.check_recording(big_avi, "long take.avi", max_bytes=settings.max_upload_bytes,
                                        workdir=tmp_path / "w", analyse=False)
    with pytest.raises(StorageUnavailable):
        pipeline.store_recording(prepared, ResearchFields(), backends_of(settings, store, repo))
    assert _objects(s3_client, s3_settings.bucket) == []
    [row] = repo.iter_all()
    assert row.status is Status.FAILED and row.error
    # The abort could not reach S3 either: the incomplete upload holds no object, and a bucket
    # lifecycle rule (AbortIncompleteMultipartUpload, see README) sweeps its parts.
    assert len(_open_uploads(s3_client, s3_settings.bucket)) <= 1
    assert prepared.path.exists()
