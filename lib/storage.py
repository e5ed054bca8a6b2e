"""ObjectStore: the one place that talks to S3 (or an S3-compatible endpoint).

It signs URLs (PUT, POST, GET, multipart parts), runs the few calls that need
credentials server-side (create/complete/abort multipart, head, list, delete)
and translates every botocore error into :mod:`lib.errors`. Bytes themselves
move through presigned URLs in :mod:`lib.transfer`.

Every method that takes a key takes the caller's user id as ``owner`` and
checks ownership before anything is signed, read or deleted.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import SSLError as BotoSSLError

from lib.errors import (
    BucketNotFound,
    ConfigError,
    FileTooLarge,
    NotFound,
    PulseVaultError,
    StorageAccessDenied,
    StorageError,
    StorageUnavailable,
    ValidationError,
)
from lib.keys import FALLBACK_STEM, RECORDINGS_PREFIX, Owner, check_owner, extension_of, sanitize_filename
from lib.settings import DEFAULT_PRESIGN_EXPIRY_S, MIB, S3Settings, Settings, clamp_expiry

MIN_PART_SIZE = 5 * MIB
"""S3's smallest multipart part (every part but the last)."""
MAX_PART_SIZE = 5 * 1024 * MIB
"""S3's largest multipart part."""
MAX_PARTS = 10_000
"""S3's largest part number, so the most parts one upload can have."""
MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MIB
"""S3's largest object."""
MAX_SIGV4_EXPIRY_S = 604_800
"""SigV4 refuses presigned URLs that live longer than seven days."""
DEFAULT_PART_SIZE = 8 * MIB
"""With 8 workers, 64 MiB in flight: measured on moto (bench/transfer.py), as fast as 16 MiB parts."""

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 120
"""Long enough for S3 to assemble a multi-gigabyte multipart upload on complete."""
DEFAULT_MAX_ATTEMPTS = 5
MIN_POOL_CONNECTIONS = 10
"""botocore's default pool; grown to the transfer concurrency when that is larger."""
MAX_SINGLE_COPY = 5 * 1024 * MIB
"""S3's largest object one CopyObject copies; a larger one is copied part by part (UploadPartCopy)."""
COPY_PART_SIZE = 512 * MIB
"""Bytes per part of a part-by-part copy (done by the server: nothing passes through this process)."""
DOWNLOAD_CHUNK = MIB
DOWNLOAD_RANGE = 32 * MIB
"""Bytes asked for per GET when downloading. It bounds what the server reads ahead for one request:
asked for a whole 1 GiB object at once, SeaweedFS held 1.1 GB of it in memory; in 32 MiB ranges, 60 MB."""
_DELETE_BATCH = 1_000  # DeleteObjects takes at most 1,000 keys
_SESSION_LOCK = threading.Lock()


@dataclass(frozen=True)
class PartInfo:
    part_number: int
    size: int
    etag: str
    last_modified: datetime | None = None


@dataclass(frozen=True)
class MultipartUploadInfo:
    """An unfinished multipart upload: started, not yet completed or aborted."""

    key: str
    upload_id: str
    initiated: datetime | None


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: datetime | None
    content_type: str | None = None
    """None when the object came from a listing (S3 lists no content types)."""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeleteResult:
    deleted: tuple[str, ...]
    errors: tuple[tuple[str, str], ...]
    """(key, message) for each key S3 refused to delete."""


@dataclass(frozen=True)
class HealthStatus:
    ok: bool
    latency_ms: float
    message: str


def part_size_for(file_size: int, preferred: int | None = None) -> int:
    """A part size within S3's limits: at least ``preferred`` (or the default), few enough parts.

    Rounded up to a whole MiB so a resumed upload recomputes the same layout.
    """
    if file_size > MAX_OBJECT_SIZE:
        raise FileTooLarge("The file is larger than the 5 TiB S3 can store as one object.")
    size = max(preferred or DEFAULT_PART_SIZE, MIN_PART_SIZE, math.ceil(file_size / MAX_PARTS))
    return min(math.ceil(size / MIB) * MIB, MAX_PART_SIZE)


def expiry_seconds(expires: int | float | None, settings: Settings | None = None) -> int:
    """Clamp an expiry to the configured bounds and never past SigV4's seven days."""
    if settings is not None:
        seconds = settings.clamp_expiry(expires)
    else:
        seconds = clamp_expiry(DEFAULT_PRESIGN_EXPIRY_S if expires is None else expires)
    return min(seconds, MAX_SIGV4_EXPIRY_S)


def content_disposition(name: str, *, inline: bool) -> str:
    """A Content-Disposition value with an ASCII fallback and the UTF-8 name (RFC 6266)."""
    kind = "inline" if inline else "attachment"
    safe = sanitize_filename(name)
    ext = extension_of(safe)
    stem = safe[: -(len(ext) + 1)] if ext else safe
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    ascii_stem = " ".join(ascii_stem.split()).strip(" .")
    if not ascii_stem.strip("_ "):
        ascii_stem = FALLBACK_STEM
    ascii_name = f"{ascii_stem}.{ext}" if ext else ascii_stem
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(safe, safe='')}"


class ObjectStore:
    """One bucket, one boto3 client. Cache one instance per process (the app does)."""

    def __init__(
        self,
        s3: S3Settings,
        *,
        settings: Settings | None = None,
        max_pool_connections: int = MIN_POOL_CONNECTIONS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self._s3 = s3
        self._settings = settings
        self._client = _make_client(s3, max_pool_connections=max_pool_connections, max_attempts=max_attempts)

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectStore:
        if settings.s3 is None:
            raise ConfigError("Storage is not configured: set the [s3] section or run in demo mode.")
        # Part uploads go through presigned URLs, but complete/abort/head run alongside them.
        pool = max(MIN_POOL_CONNECTIONS, 2 * (settings.transfer_concurrency or 0))
        return cls(settings.s3, settings=settings, max_pool_connections=pool)

    def __repr__(self) -> str:
        return f"ObjectStore(bucket={self.bucket!r}, endpoint={self._s3.endpoint_url!r})"

    @property
    def bucket(self) -> str:
        return self._s3.bucket

    @property
    def tls_verify(self) -> str | bool:
        """What HTTPS requests to the endpoint verify its certificate against (requests' ``verify``)."""
        return self._s3.ca_bundle or True

    def expiry(self, expires: int | float | None = None) -> int:
        return expiry_seconds(expires, self._settings)

    # --- presigning ---------------------------------------------------------

    def presign_put(
        self,
        key: str,
        *,
        owner: Owner,
        content_type: str,
        expires: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """A PUT URL; Content-Type and every ``x-amz-meta-*`` are signed, so the uploader must send them."""
        check_owner(key, owner)
        params = {"Bucket": self.bucket, "Key": key, "ContentType": content_type}
        if metadata:
            params["Metadata"] = dict(_ascii_metadata(metadata))
        return self._presign("put_object", params, expires)

    def presign_get(
        self,
        key: str,
        *,
        owner: Owner,
        expires: int | None = None,
        download_name: str | None = None,
        inline: bool = True,
        content_type: str | None = None,
    ) -> str:
        """A GET URL; S3 answers with our Content-Disposition (inline or attachment) and type."""
        check_owner(key, owner)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if download_name is not None:
            params["ResponseContentDisposition"] = content_disposition(download_name, inline=inline)
        elif not inline:
            params["ResponseContentDisposition"] = "attachment"
        if content_type:
            params["ResponseContentType"] = content_type
        return self._presign("get_object", params, expires)

    def presign_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        *,
        owner: Owner,
        content_length: int,
        expires: int | None = None,
        checksum_crc32: str | None = None,
    ) -> str:
        """A part URL for exactly ``content_length`` bytes.

        Content-Length is a signed header, so S3 refuses a body of any other size (403) and
        nobody can park more bytes in an unfinished upload than the layout allows. With
        ``checksum_crc32`` (base64) the x-amz-checksum-crc32 header is signed too and S3 checks it.
        """
        check_owner(key, owner)
        if not 1 <= part_number <= MAX_PARTS:
            raise ValidationError(f"Part numbers run from 1 to {MAX_PARTS}.")
        if not 0 <= content_length <= MAX_PART_SIZE:
            raise ValidationError(f"A part holds between 0 and {MAX_PART_SIZE} bytes.")
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number,
                                  "ContentLength": content_length}
        if checksum_crc32:
            params["ChecksumCRC32"] = checksum_crc32
        return self._presign("upload_part", params, expires)

    # --- multipart ----------------------------------------------------------

    def create_multipart(
        self,
        key: str,
        *,
        owner: Owner,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        checksum_algorithm: str | None = None,
    ) -> str:
        """Start a multipart upload; returns its upload id. ``checksum_algorithm``: e.g. "CRC32" (then every
        part and the completion must carry that checksum)."""
        check_owner(key, owner)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "ContentType": content_type}
        if checksum_algorithm:
            params["ChecksumAlgorithm"] = checksum_algorithm
        if metadata:
            params["Metadata"] = dict(_ascii_metadata(metadata))
        with self._errors("start the upload"):
            return self._client.create_multipart_upload(**params)["UploadId"]

    def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: Iterable[tuple[int, str]],
        *,
        owner: Owner,
        checksums_crc32: Mapping[int, str] | None = None,
    ) -> str:
        """Assemble the parts (any order given; S3 wants them sorted). Returns the object's ETag."""
        check_owner(key, owner)
        crcs = checksums_crc32 or {}
        ordered = [
            {"PartNumber": n, "ETag": etag} | ({"ChecksumCRC32": crcs[n]} if n in crcs else {})
            for n, etag in sorted(parts)
        ]
        with self._errors("finish the upload"):
            response = self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": ordered}
            )
        return response.get("ETag", "").strip('"')

    def abort_multipart(self, key: str, upload_id: str, *, owner: Owner) -> None:
        check_owner(key, owner)
        with self._errors("cancel the upload"):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def list_parts(self, key: str, upload_id: str, *, owner: Owner) -> list[PartInfo]:
        """The parts already in the bucket for an unfinished upload (for resume)."""
        check_owner(key, owner)
        parts: list[PartInfo] = []
        with self._errors("look up the unfinished upload"):
            pages = self._client.get_paginator("list_parts").paginate(Bucket=self.bucket, Key=key, UploadId=upload_id)
            for page in pages:
                parts.extend(PartInfo(p["PartNumber"], p["Size"], p["ETag"].strip('"'), p.get("LastModified"))
                             for p in page.get("Parts", []))
        return parts

    def abort_multipart_uploads(self, prefix: str, *, owner: Owner) -> int:
        """Abort every unfinished multipart upload of the caller's under ``prefix`` (S3 drops their parts);
        returns how many. For uploads the app gives up on: a record being discarded or cleaned as stale."""
        uploads = self.list_multipart_uploads(prefix, owner=owner)
        for upload in uploads:
            try:
                self.abort_multipart(upload.key, upload.upload_id, owner=owner)
            except NotFound:  # finished or aborted meanwhile: nothing left to drop
                continue
        return len(uploads)

    def list_multipart_uploads(self, prefix: str, *, owner: Owner) -> list[MultipartUploadInfo]:
        """The caller's unfinished multipart uploads under ``prefix`` (all pages), for resume."""
        check_owner(prefix, owner)
        uploads: list[MultipartUploadInfo] = []
        with self._errors("look up unfinished uploads"):
            pages = self._client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                uploads.extend(
                    MultipartUploadInfo(check_owner(u["Key"], owner), u["UploadId"], u.get("Initiated"))
                    for u in page.get("Uploads", [])
                )
        return uploads

    # --- objects ------------------------------------------------------------

    def head(self, key: str, *, owner: Owner) -> ObjectInfo:
        check_owner(key, owner)
        with self._errors("read the file's details"):
            r = self._client.head_object(Bucket=self.bucket, Key=key)
        return ObjectInfo(
            key=key,
            size=r["ContentLength"],
            etag=r.get("ETag", "").strip('"'),
            last_modified=r.get("LastModified"),
            content_type=r.get("ContentType"),
            metadata=dict(r.get("Metadata") or {}),
        )

    def put_tags(self, key: str, tags: Mapping[str, str], *, owner: Owner) -> None:
        """Replace an object's tags: the one place to attach facts learnt after the upload began."""
        check_owner(key, owner)
        tag_set = [{"Key": k, "Value": v} for k, v in tags.items()]
        with self._errors("tag the file"):
            self._client.put_object_tagging(Bucket=self.bucket, Key=key, Tagging={"TagSet": tag_set})

    def delete(self, keys: Iterable[str], *, owner: Owner) -> DeleteResult:
        """Delete a record's objects in batches; every key is checked before anything is deleted."""
        keys = [check_owner(k, owner) for k in keys]
        deleted: list[str] = []
        errors: list[tuple[str, str]] = []
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            with self._errors("delete the files"):
                r = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": False}
                )
            deleted.extend(d["Key"] for d in r.get("Deleted", []))
            errors.extend(
                (e["Key"], str(error_for_code(e.get("Code", ""), "delete the file", self.bucket)))
                for e in r.get("Errors", [])
            )
        return DeleteResult(deleted=tuple(deleted), errors=tuple(errors))

    def copy(self, source: ObjectInfo, target: str, *, source_owner: Owner, target_owner: Owner,
             part_size: int = COPY_PART_SIZE, single_limit: int = MAX_SINGLE_COPY) -> ObjectInfo:
        """Copy the object ``source`` (as listed or HEADed) to ``target`` inside the bucket, by the server, with its
        type, metadata and tags, and return the copy as a HEAD sees it. Only the listed version is copied
        (If-Match on its ETag: one replaced meanwhile fails, 412); a failed part-by-part copy is aborted."""
        check_owner(source.key, source_owner)
        check_owner(target, target_owner)
        copy_source = {"Bucket": self.bucket, "Key": source.key}
        if source.size <= single_limit:
            with self._errors("copy the file"):
                self._client.copy_object(Bucket=self.bucket, Key=target, CopySource=copy_source,
                                         CopySourceIfMatch=f'"{source.etag}"', MetadataDirective="COPY",
                                         TaggingDirective="COPY")
        else:
            self._copy_parts(source, target, part_size_for(source.size, part_size), source_owner=source_owner)
        return self.head(target, owner=target_owner)

    def _copy_parts(self, source: ObjectInfo, target: str, part_size: int, *, source_owner: Owner) -> None:
        """A multipart copy of ``source`` in ranges of ``part_size``, always completed or aborted."""
        found = self.head(source.key, owner=source_owner)
        with self._errors("copy the file"):
            upload_id = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=target, ContentType=found.content_type or "application/octet-stream",
                Metadata=dict(found.metadata))["UploadId"]
            try:
                parts = []
                for number, start in enumerate(range(0, source.size, part_size), start=1):
                    end = min(source.size, start + part_size) - 1
                    done = self._client.upload_part_copy(
                        Bucket=self.bucket, Key=target, UploadId=upload_id, PartNumber=number,
                        CopySource={"Bucket": self.bucket, "Key": source.key}, CopySourceRange=f"bytes={start}-{end}",
                        CopySourceIfMatch=f'"{source.etag}"')
                    parts.append({"PartNumber": number, "ETag": done["CopyPartResult"]["ETag"]})
                self._client.complete_multipart_upload(Bucket=self.bucket, Key=target, UploadId=upload_id,
                                                       MultipartUpload={"Parts": parts})
            except BaseException:
                with contextlib.suppress(BotoCoreError, ClientError):
                    self._client.abort_multipart_upload(Bucket=self.bucket, Key=target, UploadId=upload_id)
                raise
            tags = self._client.get_object_tagging(Bucket=self.bucket, Key=source.key).get("TagSet", [])
            if tags:
                self._client.put_object_tagging(Bucket=self.bucket, Key=target, Tagging={"TagSet": tags})

    def iter_objects(self, prefix: str, *, owner: Owner) -> Iterator[ObjectInfo]:
        """The caller's objects under ``prefix``, one page at a time."""
        check_owner(prefix, owner)
        return self._iter(prefix)

    def iter_all_objects(self, prefix: str = RECORDINGS_PREFIX) -> Iterator[ObjectInfo]:
        """Every user's objects: only for admin code that has already checked the caller is an admin."""
        if not prefix.startswith(RECORDINGS_PREFIX) or ".." in prefix:
            raise ValidationError(f"Listing is limited to {RECORDINGS_PREFIX}.")
        return self._iter(prefix)

    def health(self) -> HealthStatus:
        """Is the bucket reachable with these credentials? Never raises."""
        start = time.perf_counter()
        try:
            with self._errors("reach the bucket"):
                self._client.head_bucket(Bucket=self.bucket)
        except NotFound:  # a HEAD has no error body: its bare 404 can only mean the bucket
            return HealthStatus(False, _ms_since(start), str(error_for_code("NoSuchBucket", "", self.bucket)))
        except PulseVaultError as exc:
            return HealthStatus(False, _ms_since(start), str(exc))
        return HealthStatus(True, _ms_since(start), f"Bucket '{self.bucket}' is reachable.")

    def download_to(
        self,
        key: str,
        path: str | os.PathLike[str],
        *,
        owner: Owner,
        progress: Callable[[int, int], None] | None = None,
    ) -> Path:
        """Stream an object to a local file, :data:`DOWNLOAD_RANGE` at a time; a partial file never stays behind.

        Each range is asked for with the ETag the HEAD saw, so an object replaced mid-download
        fails (412) instead of mixing two versions.
        """
        check_owner(key, owner)
        info = self.head(key, owner=owner)
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        try:
            with self._errors("download the file"), open(partial, "wb") as out:
                done = 0
                for start in range(0, info.size, DOWNLOAD_RANGE):
                    last = min(info.size, start + DOWNLOAD_RANGE) - 1
                    body = self._client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{last}",
                                                   IfMatch=f'"{info.etag}"')
                    for chunk in body["Body"].iter_chunks(DOWNLOAD_CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, info.size)
            if done != info.size:
                raise StorageUnavailable("The download ended early. Try again.")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    # --- internals ----------------------------------------------------------

    def _presign(self, operation: str, params: dict[str, Any], expires: int | None) -> str:
        with self._errors("prepare the link"):
            return self._client.generate_presigned_url(operation, Params=params, ExpiresIn=self.expiry(expires))

    def _iter(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._errors("list the files"):
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        key=item["Key"],
                        size=item["Size"],
                        etag=item.get("ETag", "").strip('"'),
                        last_modified=item.get("LastModified"),
                    )

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise translate_error(exc, action=action, bucket=self.bucket) from exc


# --- error translation ----------------------------------------------------

TLS_UNTRUSTED = ("The storage service's TLS certificate is not trusted here. If your lab signs its own "
                 "certificates, set [s3] ca_bundle (or AWS_CA_BUNDLE) to its CA certificate file.")
"""The message for a certificate the client cannot verify (both boto3 and lib.transfer use it)."""
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_DENIED = {"403", "AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidAccessKeyId",
           "SignatureDoesNotMatch", "ExpiredToken", "TokenRefreshRequired", "InvalidToken",
           "RequestTimeTooSkewed", "RequestExpired", "InvalidSecurity"}  # fmt: skip
_UNAVAILABLE = {"429", "500", "502", "503", "504", "InternalError", "ServiceUnavailable", "SlowDown",
                "RequestTimeout", "Throttling", "ThrottlingException"}  # fmt: skip
_DENIED_MESSAGES = {
    "InvalidAccessKeyId": "The storage service does not know this access key. Check [s3] access_key_id.",
    "SignatureDoesNotMatch": "The storage secret key is wrong. Check [s3] secret_access_key.",
    "ExpiredToken": "The storage credentials have expired. Renew them and restart PulseVault.",
    "TokenRefreshRequired": "The storage credentials have expired. Renew them and restart PulseVault.",
    "RequestTimeTooSkewed": "This computer's clock is too far off for the storage service. Fix the clock.",
    "RequestExpired": "The upload link expired before it was used. Try again.",
}


def translate_error(exc: BaseException, *, action: str, bucket: str = "") -> PulseVaultError:
    """A lib.errors exception, with a message a researcher understands, for a botocore error.

    Messages name the bucket and the S3 error code at most: never keys, URLs or credentials.
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        return error_for_code(str(error.get("Code") or status), action, bucket, status=status)
    if isinstance(exc, BotoSSLError):
        return StorageUnavailable(TLS_UNTRUSTED)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return StorageAccessDenied("No usable storage credentials are configured. Check the [s3] settings.")
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, BotoConnectionError)):
        return StorageUnavailable(
            f"Could not reach the storage service to {action}. Check the network connection "
            "(and the [s3] endpoint_url, if set) and try again."
        )
    return StorageError(f"Could not {action}: the storage client failed ({type(exc).__name__}).")


def error_for_code(code: str, action: str, bucket: str, *, status: str = "") -> PulseVaultError:
    """The lib.errors exception for an S3 error code (also used for presigned-URL responses)."""
    if code == "NoSuchBucket":
        return BucketNotFound(f"The storage bucket '{bucket}' does not exist. Check [s3] bucket.")
    if code == "NoSuchUpload":
        return NotFound("That upload is no longer open on the server (finished or cancelled). Start it again.")
    if code in _NOT_FOUND:
        return NotFound("That file is not in the bucket (it may have been deleted).")
    if code in _DENIED or status == "403":
        return StorageAccessDenied(
            _DENIED_MESSAGES.get(code, f"The storage credentials are not allowed to {action} in '{bucket}'.")
        )
    if code in _UNAVAILABLE or status.startswith("5"):
        return StorageUnavailable(f"The storage service is busy or unavailable, so it could not {action}. "
                                  "Try again in a minute.")  # fmt: skip
    return StorageError(f"The storage service refused to {action} ({code or 'unknown error'}).")


# --- helpers --------------------------------------------------------------


def _make_client(s3: S3Settings, *, max_pool_connections: int, max_attempts: int) -> Any:
    config = Config(
        signature_version="s3v4",  # without it boto3 signs SigV2 URLs for custom endpoints
        region_name=s3.region,
        retries={"mode": "standard", "total_max_attempts": max_attempts},  # first try included
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        max_pool_connections=max_pool_connections,
        # MinIO/R2/Ceph and moto route by path; AWS wants virtual hosts (regional, no redirects).
        s3={"addressing_style": "path" if s3.endpoint_url else "virtual"},
        # Newer botocore adds CRC checksums that older S3-compatible endpoints reject; S3 needs none.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    with _SESSION_LOCK:  # building clients from one session is not thread-safe; using them is
        return _session().client(
            "s3",
            region_name=s3.region,
            endpoint_url=s3.endpoint_url or None,
            aws_access_key_id=s3.access_key_id,
            aws_secret_access_key=s3.secret_access_key,
            verify=s3.ca_bundle or None,
            config=config,
        )


@cache
def _session() -> boto3.session.Session:
    # Our own session (not boto3's global one); shared so its loaded service models are reused.
    return boto3.session.Session()


def _ascii_metadata(metadata: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    # Metadata travels as HTTP headers, which are ASCII; callers percent-encode names themselves.
    for name, value in metadata.items():
        if not (str(name).isascii() and str(value).isascii()):
            raise ValidationError("Object metadata must be ASCII (percent-encode file names).")
        yield str(name).lower(), str(value)


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
