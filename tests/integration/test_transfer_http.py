"""lib.transfer over real HTTP against SeaweedFS.

Failures are injected by wrapping the HTTP session the transfer uses; parts
are the 5 MiB S3 minimum so the files stay at a few MiB.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import lib.transfer as transfer
from lib.errors import (
    IntegrityError,
    KeyOwnershipError,
    StorageAccessDenied,
    StorageUnavailable,
    TransferCancelled,
)
from lib.settings import MIB, S3Settings
from lib.storage import MIN_PART_SIZE, ObjectStore
from lib.transfer import DEFAULT_CONCURRENCY, ObjectTarget, TransferConfig, UploadResult, upload_file

USER = "0b6f3c5e-5a55-4c1e-9d7c-1f2a3b4c5d6e"
RECORD = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
KEY = f"recordings/{USER}/2024/01/{RECORD}/original.mkv"
PART = MIN_PART_SIZE
SIZE = 2 * PART + 3 * MIB + 7  # three parts: 5, 5 and 3 MiB (+7 bytes)

Fault = Callable[[int, int, object], "requests.Response | None"]


class Session:
    """The real session, recording every PUT; ``fault(part, attempt, body)`` may replace one."""

    def __init__(self, real: requests.Session, fault: Fault | None) -> None:
        self.real, self.fault = real, fault
        self.attempts: Counter[int] = Counter()
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    def put(self, url: str, **kwargs) -> requests.Response:
        part = int(parse_qs(urlsplit(url).query).get("partNumber", ["0"])[0])
        with self.lock:
            self.attempts[part] += 1
            attempt = self.attempts[part]
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            injected = self.fault(part, attempt, kwargs["data"]) if self.fault else None
            return injected if injected is not None else self.real.put(url, **kwargs)
        finally:
            with self.lock:
                self.in_flight -= 1

    def close(self) -> None:
        self.real.close()


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> Callable[[Fault | None], list[Session]]:
    """Install a fault for the transfer's HTTP sessions; returns the sessions made."""
    made: list[Session] = []
    real_factory = transfer._http_session
    monkeypatch.setattr(transfer, "_backoff", lambda attempt: 0.01)

    def install(fault: Fault | None = None) -> list[Session]:
        def factory(concurrency: int) -> Session:
            made.append(Session(real_factory(concurrency), fault))
            return made[-1]

        monkeypatch.setattr(transfer, "_http_session", factory)
        return made

    return install


@pytest.fixture
def store(s3_settings: S3Settings) -> ObjectStore:
    return ObjectStore(s3_settings)


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "session.mkv"
    path.write_bytes(os.urandom(SIZE))
    return path


def error_response(status: int, code: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = f"<Error><Code>{code}</Code><Message>m</Message></Error>".encode()
    return response


def send(store: ObjectStore, source, *, key: str = KEY, concurrency: int | None = None, part_size: int | None = None,
         sha256: str | None = None, checksums: bool = True, **kwargs) -> UploadResult:
    """upload_file of ``source`` to ``key`` as USER, with these transfer knobs."""
    config = TransferConfig(concurrency=concurrency or DEFAULT_CONCURRENCY, part_size=part_size, checksums=checksums)
    return upload_file(store, ObjectTarget(key, USER, "video/x-matroska", sha256=sha256), source, config=config,
                       **kwargs)


def assert_nothing_left(store: ObjectStore, s3_client) -> None:
    assert "Uploads" not in s3_client.list_multipart_uploads(Bucket=store.bucket)
    assert s3_client.list_objects_v2(Bucket=store.bucket).get("KeyCount", 0) == 0


def download(store: ObjectStore) -> bytes:
    return requests.get(store.presign_get(KEY, owner=USER), timeout=60).content


# --- single PUT ---------------------------------------------------------------


def test_single_put_stores_sha256_as_signed_metadata(store: ObjectStore, tmp_path: Path, sessions) -> None:
    made = sessions()
    body = os.urandom(3 * MIB + 5)
    path = tmp_path / "small.mkv"
    path.write_bytes(body)
    seen: list[tuple[int, int]] = []
    result = send(store, path, progress=lambda d, t: seen.append((d, t)))
    digest = hashlib.sha256(body).hexdigest()
    assert (result.size, result.sha256, result.parts) == (len(body), digest, 1)
    info = store.head(KEY, owner=USER)
    assert info.metadata == {"sha256": digest} and info.content_type == "video/x-matroska"
    assert info.etag == result.etag
    assert download(store) == body
    assert made[0].attempts == Counter({0: 1})
    assert seen[-1] == (len(body), len(body)) and len(seen) >= 3  # about every MiB


def test_empty_file_and_stream_sources(store: ObjectStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    assert send(store, empty).size == 0
    body = os.urandom(200_000)
    result = send(store, io.BytesIO(body))
    assert result.sha256 == hashlib.sha256(body).hexdigest() and download(store) == body


# --- multipart ----------------------------------------------------------------


def test_multipart_upload(store: ObjectStore, recording: Path, s3_client, sessions) -> None:
    made = sessions()
    seen: list[tuple[int, int, str]] = []
    result = send(store, recording, progress=lambda d, t: seen.append((d, t, threading.current_thread().name)),
                  concurrency=2, part_size=PART)
    body = recording.read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    assert (result.size, result.sha256, result.parts) == (SIZE, digest, 3)
    assert result.etag.endswith("-3")
    assert download(store) == body
    tags = s3_client.get_object_tagging(Bucket=store.bucket, Key=KEY)["TagSet"]
    assert tags == [{"Key": "sha256", "Value": digest}]  # unknown at create time: tagged after
    assert made[0].attempts == Counter({1: 1, 2: 1, 3: 1}) and made[0].max_in_flight <= 2
    assert "Uploads" not in s3_client.list_multipart_uploads(Bucket=store.bucket)
    done = [d for d, _, _ in seen]
    assert done == sorted(done) and seen[-1][:2] == (SIZE, SIZE)
    assert len(seen) > result.parts  # more often than once per part
    assert {name for _, _, name in seen} == {threading.current_thread().name}


def test_file_is_read_once_in_order(store: ObjectStore, recording: Path) -> None:
    reads: list[int] = []

    class Counting(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            data = super().read(size)
            reads.append(len(data))
            return data

        def readinto(self, view) -> int:
            count = super().readinto(view)
            reads.append(count)
            return count

    stream = Counting(recording.read_bytes())
    send(store, stream, concurrency=3, part_size=PART)
    assert sum(reads) == SIZE  # every byte once; nothing re-read for the checksum


def test_known_sha256_goes_into_metadata(store: ObjectStore, recording: Path) -> None:
    digest = hashlib.sha256(recording.read_bytes()).hexdigest()
    send(store, recording, part_size=PART, sha256=digest)
    assert store.head(KEY, owner=USER).metadata == {"sha256": digest}


def test_wrong_known_sha256_aborts(store: ObjectStore, recording: Path, s3_client) -> None:
    with pytest.raises(IntegrityError):
        send(store, recording, part_size=PART, sha256="0" * 64)
    assert_nothing_left(store, s3_client)


def test_failure_mid_upload_aborts_and_fails_fast(store: ObjectStore, recording: Path, s3_client, sessions) -> None:
    made = sessions(lambda part, attempt, body: error_response(403, "AccessDenied") if part == 2 else None)
    with pytest.raises(StorageAccessDenied):
        send(store, recording, part_size=PART, concurrency=1)
    assert made[0].attempts[2] == 1  # not on the retry allow-list: no second try
    assert_nothing_left(store, s3_client)


@pytest.mark.parametrize("fault", ["connection", "503", "429", "RequestTimeout"])
def test_retryable_failures_are_retried(store: ObjectStore, recording: Path, sessions, fault: str) -> None:
    def flaky(part: int, attempt: int, body) -> requests.Response | None:
        if part != 2 or attempt > 1:
            return None
        body.read(2 * MIB)  # part of the body went out before the failure
        if fault == "connection":
            raise requests.ConnectionError("reset by peer")
        status = {"503": 503, "429": 429}.get(fault, 400)
        return error_response(status, {"503": "ServiceUnavailable", "429": "SlowDown"}.get(fault, fault))

    made = sessions(flaky)
    seen: list[int] = []
    result = send(store, recording, part_size=PART, concurrency=1, progress=lambda d, t: seen.append(d))
    assert made[0].attempts == Counter({1: 1, 2: 2, 3: 1})
    assert download(store) == recording.read_bytes() and result.parts == 3
    assert seen[-1] == SIZE and max(seen) <= SIZE  # resent bytes are not counted twice


def test_retries_give_up(store: ObjectStore, recording: Path, s3_client, sessions) -> None:
    made = sessions(lambda part, attempt, body: error_response(500, "InternalError") if part == 1 else None)
    with pytest.raises(StorageUnavailable):
        send(store, recording, part_size=PART)
    assert made[0].attempts[1] == transfer.MAX_ATTEMPTS
    assert_nothing_left(store, s3_client)


def test_cancel_mid_upload_aborts(store: ObjectStore, recording: Path, s3_client) -> None:
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done >= 6 * MIB:
            cancel.set()

    with pytest.raises(TransferCancelled):
        send(store, recording, part_size=PART, concurrency=1, progress=progress, cancel=cancel)
    assert_nothing_left(store, s3_client)


def test_cancelled_before_start(store: ObjectStore, recording: Path, s3_client) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TransferCancelled):
        send(store, recording, cancel=cancel)
    assert_nothing_left(store, s3_client)


def test_progress_callback_error_aborts(store: ObjectStore, recording: Path, s3_client) -> None:
    def broken(done: int, total: int) -> None:
        if done > PART:
            raise RuntimeError("page went away")

    with pytest.raises(RuntimeError):
        send(store, recording, part_size=PART, progress=broken)
    assert_nothing_left(store, s3_client)


def test_cross_user_key_is_refused_before_sending(store: ObjectStore, recording: Path, sessions) -> None:
    made = sessions()
    other = KEY.replace(USER, "9f1e2d3c-4b5a-4968-8776-655443322110")
    with pytest.raises(KeyOwnershipError):
        send(store, recording, key=other)
    with pytest.raises(KeyOwnershipError):
        send(store, recording, key=other, part_size=PART)
    assert all(not s.attempts for s in made)


@pytest.mark.parametrize("checksums", [True, False])
def test_parts_carry_a_signed_crc32_that_s3_checks(s3_settings: S3Settings, recording: Path, s3_client,
                                                   monkeypatch: pytest.MonkeyPatch, checksums: bool) -> None:
    store = ObjectStore(s3_settings)
    signed: list[str] = []
    presign_part = store.presign_part
    monkeypatch.setattr(store, "presign_part", lambda *a, **kw: signed.append(presign_part(*a, **kw)) or signed[-1])
    send(store, recording, concurrency=2, part_size=PART, checksums=checksums)
    headers = {parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0] for url in signed}
    assert len(signed) == 3
    assert all(("x-amz-checksum-crc32" in h) is checksums for h in headers)
    if checksums:  # S3 keeps the checksum it verified
        assert "ChecksumCRC32" in s3_client.head_object(Bucket=store.bucket, Key=KEY, ChecksumMode="ENABLED")
    assert download(store) == recording.read_bytes()
