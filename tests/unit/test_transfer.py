"""The pure pieces of lib.transfer: part layout, retry policy, progress, reading."""

from __future__ import annotations

import hashlib
import io
import threading

import pytest
import requests

import lib.transfer as transfer
from lib.errors import IntegrityError, StorageAccessDenied, StorageUnavailable, ValidationError
from lib.settings import MIB, Settings
from lib.storage import DEFAULT_PART_SIZE, MAX_PARTS, MIN_PART_SIZE


def test_layout_covers_the_file_exactly() -> None:
    parts = list(transfer._layout(12 * MIB + 1, 5 * MIB))
    assert parts == [(1, 5 * MIB), (2, 5 * MIB), (3, 2 * MIB + 1)]
    assert list(transfer._layout(10 * MIB, 5 * MIB)) == [(1, 5 * MIB), (2, 5 * MIB)]


def test_defaults_are_within_s3_limits() -> None:
    assert transfer.DEFAULT_CONCURRENCY >= 1
    assert transfer.MULTIPART_THRESHOLD >= MIN_PART_SIZE
    assert transfer.PROGRESS_STEP == MIB


def test_config_from_settings_groups_the_transfer_knobs() -> None:
    assert transfer.TransferConfig.from_settings(Settings(mode="demo")) == transfer.TransferConfig()
    config = transfer.TransferConfig.from_settings(Settings(mode="demo", transfer_concurrency=3,
                                                            transfer_part_size_bytes=16 * MIB,
                                                            transfer_checksums=False))
    assert config == transfer.TransferConfig(concurrency=3, part_size=16 * MIB, checksums=False)
    assert config.part_size_for(100 * MIB) == 16 * MIB
    assert transfer.TransferConfig().part_size_for(100 * MIB) == DEFAULT_PART_SIZE
    assert transfer.TransferConfig().part_size_for(MAX_PARTS * 10 * MIB) > DEFAULT_PART_SIZE  # at most 10,000 parts


def test_backoff_is_jittered_and_capped() -> None:
    delays = [transfer._backoff(attempt) for attempt in range(1, 30) for _ in range(20)]
    assert all(0 <= d <= transfer.BACKOFF_CAP_S for d in delays)
    assert len(set(delays)) > 100  # jitter: parts that failed together retry apart


def response(status: int, body: str = "") -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = body.encode()
    return r


class FakeStore:
    bucket = "pulsevault-unit"


class FakeJob:
    store = FakeStore()


@pytest.mark.parametrize(
    ("status", "code", "kind", "retry"),
    [
        (503, "SlowDown", StorageUnavailable, True),
        (500, "InternalError", StorageUnavailable, True),
        (429, "", StorageUnavailable, True),
        (400, "RequestTimeout", StorageUnavailable, True),
        (403, "AccessDenied", StorageAccessDenied, False),
        (403, "SignatureDoesNotMatch", StorageAccessDenied, False),
        (400, "EntityTooLarge", transfer.PulseVaultError, False),
    ],
)
def test_retry_allow_list(status: int, code: str, kind: type, retry: bool) -> None:
    body = f"<Error><Code>{code}</Code></Error>" if code else ""
    error, retryable = transfer._http_failure(FakeJob(), response(status, body))  # type: ignore[arg-type]
    assert isinstance(error, kind) and retryable is retry


def test_progress_reports_on_the_calling_thread_only() -> None:
    calls: list[tuple[int, int, str]] = []
    progress = transfer._Progress(8 * MIB, lambda d, t: calls.append((d, t, threading.current_thread().name)))
    wakes = threading.Semaphore(0)
    progress.wake = wakes.release
    workers = [threading.Thread(target=lambda: [progress.add(64 * 1024) for _ in range(32)]) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert calls == []  # workers only wake the caller
    assert wakes.acquire(blocking=False)  # ... at least once per MiB crossed
    progress.report()
    progress.report()  # unchanged: not repeated
    assert calls == [(8 * MIB, 8 * MIB, threading.current_thread().name)]


def test_progress_inline_every_mib() -> None:
    calls: list[int] = []
    progress = transfer._Progress(3 * MIB, lambda d, t: calls.append(d))
    for _ in range(3 * 16):
        progress.add(64 * 1024)
    assert calls == [MIB, 2 * MIB, 3 * MIB]


def read(reader: transfer._Reader, length: int) -> bytes:
    buffer = bytearray(length)
    reader.read_into(memoryview(buffer))
    return bytes(buffer)


@pytest.mark.parametrize("readinto", [True, False])
def test_reader_hashes_and_handles_short_reads(readinto: bool) -> None:
    data = bytes(range(256)) * 1000

    class Trickle(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            return super().read(min(size, 999) if size and size > 0 else size)

        def readinto(self, view) -> int:
            return super().readinto(view[:999])

    class Minimal:  # only read(): no readinto
        def __init__(self) -> None:
            self.stream = Trickle(data)

        def read(self, size: int) -> bytes:
            return self.stream.read(size)

    reader = transfer._Reader(Trickle(data) if readinto else Minimal())  # type: ignore[arg-type]
    assert read(reader, 100_000) + read(reader, len(data) - 100_000) == data
    reader.expect_end()
    assert reader.hexdigest(None) == hashlib.sha256(data).hexdigest()
    with pytest.raises(IntegrityError):
        reader.hexdigest("0" * 64)


def test_reader_notices_a_file_that_changed_size() -> None:
    with pytest.raises(IntegrityError):
        read(transfer._Reader(io.BytesIO(b"short")), 10)
    grown = transfer._Reader(io.BytesIO(b"0123456789"))
    read(grown, 5)
    with pytest.raises(IntegrityError):
        grown.expect_end()


def test_unseekable_stream_is_refused() -> None:
    class Pipe(io.RawIOBase):
        def readable(self) -> bool:
            return True

    with pytest.raises(ValidationError), transfer._open_source(Pipe()):
        pass


def test_stream_size_counts_from_the_current_position() -> None:
    stream = io.BytesIO(b"header" + b"payload")
    stream.seek(6)
    with transfer._open_source(stream) as (_, size):
        assert size == 7 and stream.tell() == 6
