"""Moving a recording's bytes into the bucket through presigned URLs.

A file that fits in one part goes up in a single presigned PUT; anything
larger goes as a parallel multipart upload with presigned part URLs. The file
is read exactly once, in order, on the calling thread: each part is hashed
(SHA-256 of the whole file) as it is read and handed to a bounded pool of
workers, and no new part is read while ``concurrency`` parts are in flight,
so peak memory is about ``part_size × concurrency`` whatever the file size.

All the knobs come in one :class:`TransferConfig` (built from the settings).
The progress callback runs on the calling thread (so a Streamlit page may
update its progress bar from it), about every MiB sent. Failed requests are
retried with jittered exponential backoff on an allow-list (connection errors,
timeouts, 5xx, 429, S3's RequestTimeout); anything else fails at once. A
failed or cancelled multipart upload is always aborted, so no parts linger.

:func:`download_signed` goes the other way for a process that holds no
credentials (a check worker, :mod:`lib.checks`): it streams an object from a
presigned GET link the web process signed.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import itertools
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
from contextlib import contextmanager
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
from lib.keys import Owner
from lib.settings import MIB, Settings
from lib.storage import (
    DEFAULT_PART_SIZE,
    DOWNLOAD_CHUNK,
    DOWNLOAD_RANGE,
    TLS_UNTRUSTED,
    ObjectStore,
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

log = logging.getLogger(__name__)

Source = str | os.PathLike[str] | BinaryIO
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class TransferConfig:
    """The knobs of every transfer, grouped in one value (as s3transfer's ``TransferConfig``)."""

    concurrency: int = DEFAULT_CONCURRENCY
    """Parts in flight at once (also the number of part buffers held in memory)."""
    part_size: int | None = None
    """Preferred multipart part size; None: ``storage.DEFAULT_PART_SIZE``. Raised when a file needs it."""
    checksums: bool = True
    """Each part carries a CRC32 that S3 verifies (off for endpoints that reject checksums).

    Declaring it also spares S3-compatible servers (moto among them) computing a
    whole-object checksum themselves when the upload completes."""

    @classmethod
    def from_settings(cls, settings: Settings) -> TransferConfig:
        return cls(concurrency=max(1, settings.transfer_concurrency or DEFAULT_CONCURRENCY),
                   part_size=settings.transfer_part_size_bytes, checksums=settings.transfer_checksums)

    def part_size_for(self, file_size: int) -> int:
        """The part size for a file of this size (S3 allows at most ``MAX_PARTS`` parts)."""
        return part_size_for(file_size, self.part_size)


@dataclass(frozen=True)
class ObjectTarget:
    """Where a file's bytes go and what they must be."""

    key: str
    owner: Owner
    """The signed-in user (or the study space they upload into): the key must lie under its prefix
    (lib.keys.check_owner)."""
    content_type: str
    sha256: str | None = None
    """The digest if the caller knows it already: stored as metadata, and the streamed bytes must match it."""


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
    target: ObjectTarget,
    source: Source,
    *,
    config: TransferConfig | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> UploadResult:
    """Upload a local file (or a seekable binary stream, positioned at its start) to ``target``.

    With ``target.sha256`` the digest is stored as ``x-amz-meta-sha256`` from
    the start and the streamed digest must match it. Without it, a single PUT
    still carries the metadata (the bytes are hashed before the URL is signed);
    a multipart upload cannot (its metadata is fixed before the first byte is
    read), so the digest is attached as the object tag ``sha256`` after it
    completes. What arrived is not HEAD-verified here: the caller verifies what
    it needs once (lib.pipeline.send.verify).
    """
    config = config or TransferConfig()
    _check_cancel(cancel)
    with _open_source(source) as (stream, total):
        layout_size = config.part_size_for(total)
        job = _Job(store, target, total, progress, cancel, config)
        with job:
            reader = _Reader(stream)
            if total <= min(MULTIPART_THRESHOLD, layout_size):
                return _single_put(job, reader)
            meta = {SHA256_METADATA: target.sha256.lower()} if target.sha256 else {}
            job.upload_id = store.create_multipart(
                target.key, owner=target.owner, content_type=target.content_type, metadata=meta,
                checksum_algorithm="CRC32" if config.checksums else None,
            )
            return _multipart(job, reader, layout_size)


# --- the two upload shapes ------------------------------------------------


def _single_put(job: _Job, reader: _Reader) -> UploadResult:
    # At most one part's worth of bytes: read and hash them before signing, so the digest is a signed header.
    data = memoryview(bytearray(job.total))
    reader.read_into(data)
    reader.expect_end()
    digest = reader.hexdigest(job.target.sha256)
    content_type = job.target.content_type
    meta = {SHA256_METADATA: digest}
    url = job.store.presign_put(job.key, owner=job.owner, content_type=content_type, metadata=meta)
    headers = {"Content-Type": content_type} | {f"x-amz-meta-{k}": v for k, v in meta.items()}
    etag = _put(job, lambda: url, data, headers)
    job.progress.report()
    return UploadResult(job.key, job.total, digest, etag, 1)


def _multipart(job: _Job, reader: _Reader, part_size: int) -> UploadResult:
    try:
        etags, crcs = _send_parts(job, reader, part_size)
        reader.expect_end()
        digest = reader.hexdigest(job.target.sha256)
        etag = job.store.complete_multipart(
            job.key, job.upload_id, etags.items(), owner=job.owner,
            checksums_crc32=crcs if job.config.checksums else None,
        )
    except BaseException:
        _abort(job)
        raise
    job.progress.report()
    if not job.target.sha256:
        _tag_digest(job, digest)
    return UploadResult(job.key, job.total, digest, etag, len(etags))


def _send_parts(job: _Job, reader: _Reader, part_size: int) -> tuple[dict[int, str], dict[int, str]]:
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
                    crc = None
                    if job.config.checksums:
                        crc = crcs[number] = base64.b64encode(zlib.crc32(view).to_bytes(4, "big")).decode()
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

    def __init__(self, store: ObjectStore, target: ObjectTarget, total: int, progress: ProgressCallback | None,
                 cancel: threading.Event | None, config: TransferConfig) -> None:
        self.store, self.target, self.total = store, target, total
        self.key, self.owner = target.key, target.owner
        self.cancel = cancel
        self.config = config
        self.concurrency = max(1, config.concurrency)
        self.upload_id = ""
        self.progress = _Progress(total, progress)
        self.http = _http_session(self.concurrency)
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
def _open_source(source: Source) -> Iterator[tuple[BinaryIO, int]]:
    if isinstance(source, (str, os.PathLike)):
        try:
            stream = open(source, "rb", buffering=0)  # noqa: SIM115 - closed below; unbuffered: no extra copy
        except FileNotFoundError:
            raise NotFound("The local copy of the recording is missing, so it cannot be uploaded.") from None
        with stream:
            yield stream, os.fstat(stream.fileno()).st_size  # type: ignore[misc]
        return
    try:
        start = source.tell()
        size = source.seek(0, os.SEEK_END) - start
        source.seek(start)
    except (OSError, AttributeError, ValueError):
        raise ValidationError("Only a stream that can seek can be uploaded (its size must be known).") from None
    yield source, size


def _layout(total: int, part_size: int) -> Iterator[tuple[int, int]]:
    for index in range(math.ceil(total / part_size)):
        yield index + 1, min(part_size, total - index * part_size)


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


# --- fetching through a presigned GET link -------------------------------------------------------------------


@dataclass(frozen=True)
class SignedDownload:
    """An object a process without credentials may fetch (a check worker): its presigned GET link and what the
    bytes must be. Picklable."""

    url: str
    size: int
    etag: str
    """Each range is asked for with ``If-Match`` this ETag, so an object replaced meanwhile fails instead of
    mixing two versions."""
    verify: str | bool = True
    """requests' ``verify``: a lab's CA bundle, or True."""


WORKER_LINK_S = 6 * 3_600
"""How long a worker's download link lasts (capped by the store's presign limit): a check may wait its turn."""


def sign_download(store: ObjectStore, key: str, *, owner: Owner) -> SignedDownload:
    """A link a worker fetches ``key`` through, pinned to the object's current bytes (its ETag)."""
    info = store.head(key, owner=owner)
    return sign_pinned(store, key, owner=owner, size=info.size, etag=info.etag)


def sign_pinned(store: ObjectStore, key: str, *, owner: Owner, size: int, etag: str) -> SignedDownload:
    """A link to ``key`` pinned to bytes the caller has already seen (their size and ETag)."""
    url = store.presign_get(key, owner=owner, expires=WORKER_LINK_S)
    return SignedDownload(url=url, size=size, etag=etag, verify=store.tls_verify)


def download_signed(link: SignedDownload, path: str | os.PathLike[str], *,
                    progress: ProgressCallback | None = None) -> None:
    """Stream the object to ``path`` in :data:`lib.storage.DOWNLOAD_RANGE` ranges; a partial file never stays."""
    target = os.fspath(path)
    partial = target + ".part"
    try:
        with _http_session(1) as session, open(partial, "wb") as out:
            done = 0
            for start in range(0, link.size, DOWNLOAD_RANGE):
                last = min(link.size, start + DOWNLOAD_RANGE) - 1
                done = _fetch_range(session, link, (start, last), out, done, progress)
        if done != link.size:
            raise StorageUnavailable("The download of the recording ended early. Check it again.")
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def _fetch_range(session: requests.Session, link: SignedDownload, span: tuple[int, int], out: BinaryIO,
                 done: int, progress: ProgressCallback | None) -> int:
    with _ranged_get(session, link, span) as response:
        for chunk in response.iter_content(DOWNLOAD_CHUNK):
            out.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, link.size)
    return done


def read_signed(link: SignedDownload, *, range_size: int, concurrency: int) -> Iterator[bytes]:
    """The object's bytes in order, ``range_size`` at a time, fetched by up to ``concurrency`` ranged GETs at
    once (s3transfer's way past one connection's speed); never the whole object in memory.

    Plain HTTP on the presigned link rather than boto3's ``get_object``: botocore's request and response
    handling cost about twice the CPU per byte, which on a shared server is what a streamed export waits on.
    """
    starts = iter(range(0, link.size, range_size))
    with _http_session(concurrency) as session, ThreadPoolExecutor(concurrency, thread_name_prefix="s3-range") as pool:
        def fetch(start: int) -> bytes:
            return _read_range(session, link, (start, min(link.size, start + range_size) - 1))

        pending = collections.deque(pool.submit(fetch, start) for start in itertools.islice(starts, concurrency))
        try:
            while pending:
                data = pending.popleft().result()
                if (start := next(starts, None)) is not None:
                    pending.append(pool.submit(fetch, start))
                yield data
        finally:
            for future in pending:
                future.cancel()


def _read_range(session: requests.Session, link: SignedDownload, span: tuple[int, int]) -> bytes:
    with _ranged_get(session, link, span) as response:
        data = response.raw.read(decode_content=False)  # one read into one buffer, not requests' 10 KiB steps
    if len(data) != span[1] - span[0] + 1:
        raise StorageUnavailable("Reading the recording from the bucket ended early. Try again.")
    return data


@contextmanager
def _ranged_get(session: requests.Session, link: SignedDownload, span: tuple[int, int]) -> Iterator[requests.Response]:
    """The response to a GET of bytes ``span`` (inclusive) of the object, if it still has the link's ETag."""
    headers = {"Range": f"bytes={span[0]}-{span[1]}", "If-Match": f'"{link.etag}"'}
    try:
        with session.get(link.url, headers=headers, stream=True, timeout=HTTP_TIMEOUT_S,
                         verify=link.verify) as response:
            if response.status_code not in (200, 206):
                raise _download_failure(response)
            yield response
    except requests.exceptions.SSLError:
        raise StorageUnavailable(TLS_UNTRUSTED) from None
    except (requests.ConnectionError, requests.Timeout):
        raise StorageUnavailable("The recording could not be fetched from the bucket (the connection failed). "
                                 "Try again in a minute.") from None


def _download_failure(response: requests.Response) -> PulseVaultError:
    if response.status_code == 412:
        return IntegrityError("The recording changed in the bucket while it was being read. Try again.")
    match = re.search(r"<Code>([^<]+)</Code>", response.text[:4096])
    return error_for_code(match.group(1) if match else str(response.status_code), "download the file", "",
                          status=str(response.status_code))


# --- storing one small object through a presigned PUT link ---------------------------------------------------


@dataclass(frozen=True)
class SignedUpload:
    """One object a process without credentials may store (a job's worker: a regenerated thumbnail or preview):
    its presigned PUT link and the headers the link was signed with, which the PUT must send. Picklable."""

    key: str
    url: str
    content_type: str
    metadata: Mapping[str, str]
    verify: str | bool = True

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type, **{f"x-amz-meta-{k}": v for k, v in self.metadata.items()}}


def sign_upload(store: ObjectStore, key: str, *, owner: Owner, content_type: str,
                metadata: Mapping[str, str]) -> SignedUpload:
    """A link that stores exactly ``key``, with exactly this type and metadata (the store checks the owner)."""
    url = store.presign_put(key, owner=owner, content_type=content_type, metadata=metadata, expires=WORKER_LINK_S)
    return SignedUpload(key=key, url=url, content_type=content_type, metadata=dict(metadata),
                        verify=store.tls_verify)


def put_signed(link: SignedUpload, path: str | os.PathLike[str]) -> int:
    """PUT the file through ``link`` in one request (a derivative: well under S3's single-PUT limit), streamed
    from disk; its size on success."""
    size = os.path.getsize(path)
    with open(path, "rb") as body, _http_session(1) as session:
        try:
            response = session.put(link.url, data=body, headers={**link.headers, "Content-Length": str(size)},
                                   timeout=HTTP_TIMEOUT_S, verify=link.verify)
        except requests.RequestException as exc:
            raise StorageUnavailable(f"The bucket could not be reached to store {os.path.basename(link.key)} "
                                     f"({type(exc).__name__}).") from None
    if response.status_code >= 300:
        raise _upload_failure(response)
    return size


def _upload_failure(response: requests.Response) -> PulseVaultError:
    match = re.search(r"<Code>([^<]+)</Code>", response.text[:4096])
    return error_for_code(match.group(1) if match else str(response.status_code), "store the file", "",
                          status=str(response.status_code))
