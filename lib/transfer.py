"""Moving a recording's bytes into the bucket through presigned URLs.

A file that fits in one part goes up in a single presigned PUT; anything
larger goes as a parallel multipart upload with presigned part URLs. The file
is read exactly once, in order, on the calling thread: each part is hashed
(SHA-256 of the whole file) as it is read and handed to a bounded pool of
workers, and no new part is read while ``concurrency`` parts are in flight,
so peak memory is about ``part_size × concurrency`` whatever the file size.

The progress callback runs on the calling thread (so a Streamlit page may
update its progress bar from it), about every MiB sent. Failed requests are
retried with jittered exponential backoff on an allow-list (connection errors,
timeouts, 5xx, 429, S3's RequestTimeout); anything else fails at once. A
failed or cancelled multipart upload is always aborted, so no parts linger.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import os
import queue
import random
import re
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import BinaryIO

import requests
from requests.adapters import HTTPAdapter

from lib.errors import (
    IntegrityError,
    NotFound,
    PulseVaultError,
    StorageUnavailable,
    TransferCancelled,
    TransferError,
    ValidationError,
)
from lib.settings import MIB
from lib.storage import (
    DEFAULT_PART_SIZE,
    TLS_UNTRUSTED,
    ObjectStore,
    PartInfo,
    error_for_code,
    part_size_for,
)

DEFAULT_CONCURRENCY = 8
"""Parallel part uploads. bench/transfer.py on moto (2 shared cores): 8 x 8 MiB beat 2-6 x 16 MiB and 4 x 8 MiB
within the (large) noise; real S3 is latency-bound and gains from parallel connections. Memory: 64 MiB of parts."""
MULTIPART_THRESHOLD = DEFAULT_PART_SIZE
"""Files up to this size (or up to the part size, if smaller) go in one presigned PUT."""
PROGRESS_STEP = MIB
"""Report progress about every MiB sent: smooth for a progress bar, cheap for the callback."""
MAX_ATTEMPTS = 5
"""Tries per request (first try included) for the retryable errors."""
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 10.0
HTTP_TIMEOUT_S = (10, 120)
"""(connect, read) seconds for each PUT."""
SEND_BLOCK = 256 * 1024
"""Bytes handed to the socket per write; larger than urllib3's 16 KiB to cut per-call overhead."""
SHA256_METADATA = "sha256"
"""Name of the user metadata (``x-amz-meta-sha256``) or tag holding the file's hex SHA-256."""
_POLL_S = 0.1  # how often the calling thread looks at the cancel event while waiting
_RETRY_CODES = frozenset({"RequestTimeout", "SlowDown", "InternalError", "ServiceUnavailable"})
_MD5_HEX = re.compile(r"[0-9a-f]{32}")

log = logging.getLogger(__name__)

Source = str | os.PathLike[str] | BinaryIO
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class UploadResult:
    key: str
    size: int
    sha256: str
    etag: str
    parts: int
    """1 for a single PUT."""


def upload_file(
    store: ObjectStore,
    key: str,
    path: Source,
    *,
    owner: str,
    content_type: str,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    concurrency: int | None = None,
    part_size: int | None = None,
    metadata: Mapping[str, str] | None = None,
    sha256: str | None = None,
    size: int | None = None,
) -> UploadResult:
    """Upload a local file (or a binary stream, positioned at its start) to ``key``.

    ``sha256``: the digest if the caller already knows it (e.g. from a
    duplicate check). It is then stored as ``x-amz-meta-sha256`` from the start
    and the streamed digest must match it. Without it, a single PUT still
    carries the metadata (the bytes are hashed before the URL is signed); a
    multipart upload cannot (its metadata is fixed before the first byte is
    read), so the digest is attached as the object tag ``sha256`` after it
    completes. ``size`` is needed only for a stream that cannot seek.
    """
    _check_cancel(cancel)
    with _open_source(path, size) as (stream, total):
        layout_size = part_size_for(total, part_size or _configured(store, "transfer_part_size_bytes"))
        job = _Job(store, key, owner, total, progress, cancel, _concurrency(store, concurrency))
        with job:
            reader = _Reader(stream)
            if total <= min(MULTIPART_THRESHOLD, layout_size):
                return _single_put(job, reader, content_type, metadata or {}, sha256)
            meta = dict(metadata or {})
            if sha256:
                meta[SHA256_METADATA] = sha256.lower()
            job.crc32 = _part_checksums(store)
            job.upload_id = store.create_multipart(
                key, owner=owner, content_type=content_type, metadata=meta,
                checksum_algorithm="CRC32" if job.crc32 else None,
            )
            return _multipart(job, reader, layout_size, {}, sha256)


def resume_upload(
    store: ObjectStore,
    key: str,
    upload_id: str,
    path: Source,
    *,
    owner: str,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    concurrency: int | None = None,
    part_size: int | None = None,
    sha256: str | None = None,
    size: int | None = None,
) -> UploadResult:
    """Finish an interrupted multipart upload, sending only the parts the bucket lacks.

    A whole-file SHA-256 needs every byte, so the parts already uploaded are
    re-read and hashed (not sent); each is kept only if its size and ETag (the
    part's MD5) match what is read now, otherwise it is sent again. The part
    size is taken from the parts already there unless ``part_size`` is given.
    """
    _check_cancel(cancel)
    listed = {p.part_number: p for p in store.list_parts(key, upload_id, owner=owner)}
    with _open_source(path, size) as (stream, total):
        preferred = part_size or max((p.size for p in listed.values()), default=None)
        layout_size = part_size_for(total, preferred or _configured(store, "transfer_part_size_bytes"))
        job = _Job(store, key, owner, total, progress, cancel, _concurrency(store, concurrency))
        job.upload_id = upload_id
        job.crc32 = _part_checksums(store)  # as when the upload was started
        with job:
            return _multipart(job, _Reader(stream), layout_size, listed, sha256)


# --- the two upload shapes ------------------------------------------------


def _single_put(
    job: _Job, reader: _Reader, content_type: str, metadata: Mapping[str, str], expected: str | None
) -> UploadResult:
    # At most one part's worth of bytes: read and hash them before signing, so the digest is a signed header.
    data = memoryview(bytearray(job.total))
    reader.read_into(data)
    reader.expect_end()
    digest = reader.hexdigest(expected)
    meta = {str(k).lower(): str(v) for k, v in metadata.items()} | {SHA256_METADATA: digest}
    url = job.store.presign_put(job.key, owner=job.owner, content_type=content_type, metadata=meta)
    headers = {"Content-Type": content_type} | {f"x-amz-meta-{k}": v for k, v in meta.items()}
    etag = _put(job, lambda: url, data, headers)
    job.progress.report()
    _verify(job, digest)
    return UploadResult(job.key, job.total, digest, etag, 1)


def _multipart(
    job: _Job, reader: _Reader, part_size: int, listed: Mapping[int, PartInfo], expected: str | None
) -> UploadResult:
    try:
        etags, crcs = _send_parts(job, reader, part_size, listed)
        reader.expect_end()
        digest = reader.hexdigest(expected)
        etag = job.store.complete_multipart(
            job.key, job.upload_id, etags.items(), owner=job.owner, checksums_crc32=crcs if job.crc32 else None
        )
    except BaseException:
        _abort(job)
        raise
    job.progress.report()
    stored = _verify(job, digest)
    if stored is None:
        _tag_digest(job, digest)
    return UploadResult(job.key, job.total, digest, etag, len(etags))


def _send_parts(
    job: _Job, reader: _Reader, part_size: int, listed: Mapping[int, PartInfo]
) -> tuple[dict[int, str], dict[int, str]]:
    """Read parts in order on this thread, send them from the pool.

    Parts are read into at most ``concurrency`` reused buffers, and a part is
    read only when a buffer is free: memory is bounded and nothing is copied.
    """
    events: queue.SimpleQueue[Future[str] | None] = queue.SimpleQueue()
    job.progress.wake = lambda: events.put(None)
    etags: dict[int, str] = {}
    crcs: dict[int, str] = {}
    in_flight: dict[Future[str], tuple[int, bytearray]] = {}
    free: list[bytearray] = []
    parts = iter(_layout(job.total, part_size))
    following = next(parts, None)
    with ThreadPoolExecutor(job.concurrency, thread_name_prefix="pulsevault-part") as pool:
        try:
            while following is not None or in_flight:
                _check_cancel(job.cancel)
                if following is not None and len(in_flight) < job.concurrency:
                    number, length = following
                    buffer = free.pop() if free else bytearray(part_size)
                    view = memoryview(buffer)[:length]
                    reader.read_into(view)
                    if job.crc32:
                        crcs[number] = base64.b64encode(zlib.crc32(view).to_bytes(4, "big")).decode()
                    if _reusable(listed.get(number), view):
                        etags[number] = listed[number].etag
                        job.progress.add(length)
                        free.append(buffer)
                    else:
                        crc = crcs.get(number)
                        headers = {"x-amz-checksum-crc32": crc} if crc else {}
                        future = pool.submit(_put, job, _part_signer(job, number, length, crc), view, headers)
                        future.add_done_callback(events.put)
                        in_flight[future] = (number, buffer)
                    following = next(parts, None)
                else:
                    for done in _wait_events(events):
                        number, buffer = in_flight.pop(done)
                        etags[number] = done.result()
                        free.append(buffer)  # the PUT has its response: nothing reads the buffer any more
                job.progress.report()
        except BaseException:
            job.stop()  # running workers give up at their next block; the pool waits for them
            raise
    return etags, crcs


def _part_signer(job: _Job, number: int, length: int, crc: str | None) -> Callable[[], str]:
    def sign() -> str:
        # Signed per attempt: a long backoff must not outlive the URL.
        return job.store.presign_part(job.key, job.upload_id, number, owner=job.owner, content_length=length,
                                      checksum_crc32=crc)

    return sign


def _put(job: _Job, sign: Callable[[], str], data: memoryview, headers: Mapping[str, str]) -> str:
    """One PUT with retries on the allow-list; returns the ETag."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        body = _Body(data, job)
        try:
            # verify per request: a session's own verify loses to REQUESTS_CA_BUNDLE from the environment.
            response = job.http.put(sign(), data=body, headers=dict(headers), timeout=HTTP_TIMEOUT_S,
                                    verify=job.verify)
        except _Stopped:
            job.progress.add(-body.sent)
            raise TransferCancelled("The upload was cancelled.") from None
        except requests.exceptions.SSLError:  # no retry mends an untrusted certificate
            raise StorageUnavailable(TLS_UNTRUSTED) from None
        except (requests.ConnectionError, requests.Timeout):
            failure: PulseVaultError = StorageUnavailable(
                "The connection to the storage service dropped during the upload. Check the network, retry."
            )
            retryable = True
        else:
            if response.ok:
                return _etag_of(response)
            failure, retryable = _http_failure(job, response)
        job.progress.add(-body.sent)  # these bytes will be sent again (or not at all)
        if not retryable or attempt == MAX_ATTEMPTS:
            raise failure
        log.info("upload request failed (%s); retry %d of %d", type(failure).__name__, attempt, MAX_ATTEMPTS - 1)
        if job.sleep(_backoff(attempt)):
            raise TransferCancelled("The upload was cancelled.")
    raise AssertionError("unreachable")  # pragma: no cover


# --- helpers ---------------------------------------------------------------


class _Stopped(Exception):
    """Raised inside a request body to cut a PUT short. Not an OSError, so urllib3 won't retry it."""


class _Job:
    """What every part of one upload shares: where, who, progress, the HTTP pool and the stop flag."""

    def __init__(
        self,
        store: ObjectStore,
        key: str,
        owner: str,
        total: int,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
        concurrency: int,
    ) -> None:
        self.store, self.key, self.owner, self.total = store, key, owner, total
        self.cancel = cancel
        self.concurrency = concurrency
        self.upload_id = ""
        self.crc32 = False
        self.progress = _Progress(total, progress)
        self.http = _http_session(concurrency)
        self.verify = store.tls_verify
        self._stopped = threading.Event()

    def __enter__(self) -> _Job:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def stop(self) -> None:
        self._stopped.set()

    def stopping(self) -> bool:
        return self._stopped.is_set() or (self.cancel is not None and self.cancel.is_set())

    def sleep(self, seconds: float) -> bool:
        """Sleep unless told to stop; True if stopped."""
        remaining = seconds
        while remaining > 0 and not self.stopping():
            self._stopped.wait(min(_POLL_S, remaining))
            remaining -= _POLL_S
        return self.stopping()


class _Progress:
    """Bytes sent, counted from any thread; the callback runs only on the calling thread."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self._callback = callback
        self._lock = threading.Lock()
        self._done = 0
        self._last_wake = 0
        self._reported: int | None = None
        self.wake: Callable[[], None] | None = None
        """Set by the multipart loop so workers can wake the calling thread; None: report inline."""

    def add(self, count: int) -> None:
        with self._lock:
            self._done += count
            due = abs(self._done - self._last_wake) >= PROGRESS_STEP
            if due:
                self._last_wake = self._done
        if due:
            self.wake() if self.wake else self.report()

    def report(self) -> None:
        with self._lock:
            done = self._done
        if self._callback is not None and done != self._reported:
            self._reported = done
            self._callback(done, self.total)


class _Body:
    """One part as a file-like body for requests: counts bytes as they go out, stops on cancel."""

    def __init__(self, data: memoryview, job: _Job) -> None:
        self._data = data
        self._job = job
        self.sent = 0

    def __len__(self) -> int:  # requests reads the Content-Length from here
        return len(self._data)

    def read(self, size: int = -1) -> memoryview:
        if self._job.stopping():
            raise _Stopped
        end = len(self._data) if size is None or size < 0 else min(self.sent + size, len(self._data))
        chunk = self._data[self.sent : end]
        self._job.progress.add(end - self.sent)
        self.sent = end
        return chunk


class _Reader:
    """The single, in-order read of the source, hashing as it goes."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()

    def read_into(self, view: memoryview) -> None:
        """Fill ``view`` from the stream (straight from the OS for files) and hash it."""
        readinto = getattr(self._stream, "readinto", None)
        got = 0
        while got < len(view):
            if readinto is not None:
                count = readinto(view[got:])
            else:  # a minimal stream: read() and copy
                chunk = self._stream.read(len(view) - got)
                count = len(chunk)
                view[got : got + count] = chunk
            if not count:  # a pipe or socket may return less than asked; only EOF returns nothing
                raise IntegrityError("The file got shorter while it was being uploaded. Upload it again.")
            got += count
        self._hash.update(view)

    def expect_end(self) -> None:
        if self._stream.read(1):
            raise IntegrityError(
                "The file grew while it was being uploaded (still being written?). Upload it when it is done."
            )

    def hexdigest(self, expected: str | None) -> str:
        digest = self._hash.hexdigest()
        if expected and expected.lower() != digest:
            raise IntegrityError("The file changed after it was checked. Upload it again.")
        return digest


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        kwargs["blocksize"] = SEND_BLOCK
        super().init_poolmanager(*args, **kwargs)


def _http_session(concurrency: int) -> requests.Session:
    """One connection per worker, reused across parts; retries are ours, so urllib3 makes none."""
    session = requests.Session()
    adapter = _Adapter(pool_connections=1, pool_maxsize=concurrency, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@contextmanager
def _open_source(source: Source, size: int | None) -> Iterator[tuple[BinaryIO, int]]:
    if isinstance(source, (str, os.PathLike)):
        try:
            stream = open(source, "rb", buffering=0)  # noqa: SIM115 - closed below; unbuffered: no extra copy
        except FileNotFoundError:
            raise NotFound("The local copy of the recording is missing, so it cannot be uploaded.") from None
        with stream:
            yield stream, os.fstat(stream.fileno()).st_size  # type: ignore[misc]
        return
    if size is None:
        try:
            start = source.tell()
            size = source.seek(0, os.SEEK_END) - start
            source.seek(start)
        except (OSError, AttributeError, ValueError):
            raise ValidationError("Pass size= to upload a stream that cannot seek.") from None
    yield source, size


def _layout(total: int, part_size: int) -> Iterator[tuple[int, int]]:
    for index in range(math.ceil(total / part_size)):
        yield index + 1, min(part_size, total - index * part_size)


def _reusable(part: PartInfo | None, data: memoryview | bytes) -> bool:
    """Is a part already in the bucket exactly these bytes? Its plain ETag is their MD5."""
    if part is None or part.size != len(data):
        return False
    etag = part.etag.strip('"').lower()
    if not _MD5_HEX.fullmatch(etag):  # SSE-KMS/SSE-C ETags are not MD5s: the size must do
        return True
    return hashlib.md5(data, usedforsecurity=False).hexdigest() == etag


def _wait_events(events: queue.SimpleQueue[Future[str] | None]) -> list[Future[str]]:
    """Block briefly for news from the workers; return the parts that finished."""
    finished: list[Future[str]] = []
    try:
        item = events.get(timeout=_POLL_S)
        while True:
            if item is not None:
                finished.append(item)
            item = events.get_nowait()
    except queue.Empty:
        return finished


def _verify(job: _Job, digest: str) -> str | None:
    """HEAD the object: the size must match, and a stored digest too. Returns the stored digest."""
    info = job.store.head(job.key, owner=job.owner)
    stored = info.metadata.get(SHA256_METADATA)
    if info.size != job.total or (stored is not None and stored.lower() != digest):
        with suppress(PulseVaultError):
            job.store.delete([job.key], owner=job.owner)
        raise IntegrityError("What arrived in the bucket does not match the file, so it was removed. Upload again.")
    return stored


def _tag_digest(job: _Job, digest: str) -> None:
    # The row in the metadata store holds the digest too, so a missing tag permission is not fatal.
    try:
        job.store.put_tags(job.key, {SHA256_METADATA: digest}, owner=job.owner)
    except PulseVaultError as exc:
        log.warning("could not tag the upload with its SHA-256: %s", exc)


def _abort(job: _Job) -> None:
    if not job.upload_id:
        return
    try:
        job.store.abort_multipart(job.key, job.upload_id, owner=job.owner)
    except PulseVaultError as exc:
        # Report the original failure; a bucket lifecycle rule should sweep what is left.
        log.warning("could not abort the multipart upload: %s", exc)


def _http_failure(job: _Job, response: requests.Response) -> tuple[PulseVaultError, bool]:
    match = re.search(r"<Code>([^<]+)</Code>", response.text[:4096])
    code = match.group(1) if match else ""
    error = error_for_code(code or str(response.status_code), "upload the file", job.store.bucket,
                           status=str(response.status_code))  # fmt: skip
    status = response.status_code
    return error, status >= 500 or status == 429 or code in _RETRY_CODES


def _etag_of(response: requests.Response) -> str:
    etag = response.headers.get("ETag")
    if not etag:
        raise TransferError("The storage service accepted the upload but returned no ETag.")
    return etag.strip('"')


def _backoff(attempt: int) -> float:
    # Full jitter: parallel parts that failed together do not retry together.
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise TransferCancelled("The upload was cancelled.")


def _concurrency(store: ObjectStore, concurrency: int | None) -> int:
    return max(1, concurrency or _configured(store, "transfer_concurrency") or DEFAULT_CONCURRENCY)


def _part_checksums(store: ObjectStore) -> bool:
    """Whether parts carry a CRC32 that S3 verifies (off for endpoints that reject checksums).

    Declaring it also spares S3-compatible servers (moto among them) computing a
    whole-object checksum themselves when the upload completes.
    """
    return store.settings.transfer_checksums if store.settings is not None else True


def _configured(store: ObjectStore, name: str) -> int | None:
    return getattr(store.settings, name, None) if store.settings is not None else None
