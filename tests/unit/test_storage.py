"""ObjectStore with moto in-process: what it signs, its limits and its error translation.

moto checks no signatures, expiry or POST policies, so those are tested by
reading what the code signed.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from moto import mock_aws

from lib.errors import (
    BucketNotFound,
    ConfigError,
    FileTooLarge,
    KeyOwnershipError,
    NotFound,
    StorageAccessDenied,
    StorageError,
    StorageUnavailable,
    ValidationError,
)
from lib.settings import MIB, S3Settings, Settings
from lib.storage import (
    DEFAULT_PART_SIZE,
    MAX_OBJECT_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MAX_SIGV4_EXPIRY_S,
    MIN_PART_SIZE,
    ObjectStore,
    content_disposition,
    expiry_seconds,
    part_size_for,
    translate_error,
)

BUCKET = "pulsevault-unit"
USER = "0b6f3c5e-5a55-4c1e-9d7c-1f2a3b4c5d6e"
OTHER = "9f1e2d3c-4b5a-4968-8776-655443322110"
KEY = f"recordings/{USER}/2024/01/3fa85f64-5717-4562-b3fc-2c963f66afa6/original.mp4"
OTHER_KEY = f"recordings/{OTHER}/2024/01/3fa85f64-5717-4562-b3fc-2c963f66afa6/original.mp4"
S3 = S3Settings(bucket=BUCKET, region="us-east-1", access_key_id="AKIDUNIT", secret_access_key="unit-secret-value")


@pytest.fixture
def store() -> Iterator[ObjectStore]:
    with mock_aws():
        store = ObjectStore(S3, settings=Settings(mode="cloud", s3=S3))
        store._client.create_bucket(Bucket=BUCKET)
        yield store


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# --- limits ----------------------------------------------------------------


def test_s3_limits() -> None:
    assert (MIN_PART_SIZE, MAX_PART_SIZE, MAX_PARTS, MAX_SIGV4_EXPIRY_S) == (
        5 * MIB,
        5 * 1024 * MIB,
        10_000,
        604_800,
    )


@pytest.mark.parametrize(
    ("size", "preferred", "expected"),
    [
        (1, None, DEFAULT_PART_SIZE),
        (10 * MIB, 1, MIN_PART_SIZE),
        (10 * MIB, 7 * MIB + 1, 8 * MIB),  # rounded up to whole MiB
        (MAX_PARTS * 100 * MIB + 1, None, 101 * MIB),  # grown to stay within 10,000 parts
    ],
)
def test_part_size_for(size: int, preferred: int | None, expected: int) -> None:
    part = part_size_for(size, preferred)
    assert part == expected
    assert -(-size // part) <= MAX_PARTS


def test_part_size_refuses_what_s3_cannot_hold() -> None:
    assert part_size_for(MAX_OBJECT_SIZE) <= MAX_PART_SIZE
    assert part_size_for(10 * MIB, 100 * MAX_PART_SIZE) == MAX_PART_SIZE
    with pytest.raises(FileTooLarge):
        part_size_for(MAX_OBJECT_SIZE + 1)


@pytest.mark.parametrize(("asked", "given"), [(None, 3600), (1, 60), (900, 900), (10**9, 86_400)])
def test_expiry_is_clamped(store: ObjectStore, asked: int | None, given: int) -> None:
    assert query(store.presign_get(KEY, owner=USER, expires=asked))["X-Amz-Expires"] == str(given)


def test_expiry_never_beyond_sigv4_limit() -> None:
    assert expiry_seconds(10**9) <= MAX_SIGV4_EXPIRY_S
    assert expiry_seconds(None, Settings(mode="demo", presign_expiry_s=120)) == 120


# --- what is signed ---------------------------------------------------------


def test_presign_put_signs_content_type_and_metadata(store: ObjectStore) -> None:
    url = store.presign_put(KEY, owner=USER, content_type="video/mp4", expires=600, metadata={"SHA256": "ab"})
    q = query(url)
    assert q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert q["X-Amz-Expires"] == "600"
    assert set(q["X-Amz-SignedHeaders"].split(";")) == {"content-type", "host", "x-amz-meta-sha256"}
    assert not any("checksum" in name.lower() for name in q)  # no CRC the browser/uploader cannot send
    assert "unit-secret-value" not in url


def test_presign_get_download_name(store: ObjectStore) -> None:
    url = store.presign_get(KEY, owner=USER, download_name="../Sitzung Müller.MP4", inline=False,
                            content_type="video/mp4")  # fmt: skip
    q = query(url)
    assert q["response-content-disposition"] == (
        "attachment; filename=\"Sitzung Muller.mp4\"; filename*=UTF-8''Sitzung%20M%C3%BCller.mp4"
    )
    assert q["response-content-type"] == "video/mp4"
    assert q["X-Amz-SignedHeaders"] == "host"


def test_presign_get_inline_by_default(store: ObjectStore) -> None:
    assert "response-content-disposition" not in query(store.presign_get(KEY, owner=USER))
    inline = query(store.presign_get(KEY, owner=USER, download_name="a.mp4"))
    assert inline["response-content-disposition"].startswith("inline; filename=")


def test_content_disposition_ascii_fallback() -> None:
    assert content_disposition("受试者.mkv", inline=False).startswith('attachment; filename="recording.mkv"')


def test_presign_part_numbers(store: ObjectStore) -> None:
    url = store.presign_part(KEY, "upload-1", 3, owner=USER, content_length=MIB)
    assert query(url)["partNumber"] == "3" and query(url)["uploadId"] == "upload-1"
    with pytest.raises(ValidationError):
        store.presign_part(KEY, "upload-1", MAX_PARTS + 1, owner=USER, content_length=MIB)


def test_presign_part_signs_its_exact_length(store: ObjectStore) -> None:
    # What S3 enforces is tried against SeaweedFS (tests/integration/test_s3_refusals.py); here, what is signed.
    url = store.presign_part(KEY, "upload-1", 1, owner=USER, content_length=5 * MIB)
    assert "content-length" in query(url)["X-Amz-SignedHeaders"].split(";")
    for bad in (-1, MAX_PART_SIZE + 1):
        with pytest.raises(ValidationError):
            store.presign_part(KEY, "upload-1", 1, owner=USER, content_length=bad)


# --- ownership --------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.presign_put(OTHER_KEY, owner=USER, content_type="video/mp4"),
        lambda s: s.presign_get(OTHER_KEY, owner=USER),
        lambda s: s.presign_part(OTHER_KEY, "u", 1, owner=USER, content_length=1),
        lambda s: s.create_multipart(OTHER_KEY, owner=USER, content_type="video/mp4"),
        lambda s: s.complete_multipart(OTHER_KEY, "u", [(1, "e")], owner=USER),
        lambda s: s.abort_multipart(OTHER_KEY, "u", owner=USER),
        lambda s: s.list_parts(OTHER_KEY, "u", owner=USER),
        lambda s: s.head(OTHER_KEY, owner=USER),
        lambda s: s.put_tags(OTHER_KEY, {}, owner=USER),
        lambda s: s.delete([KEY, OTHER_KEY], owner=USER),
        lambda s: s.iter_objects(f"recordings/{OTHER}/", owner=USER),
        lambda s: s.download_to(OTHER_KEY, "/tmp/never", owner=USER),
    ],
)
def test_cross_user_keys_are_refused_before_any_call(call, monkeypatch) -> None:
    store = ObjectStore(S3)  # no mock needed: a refused key must never reach the client

    def no_calls(*args, **kwargs):
        raise AssertionError("the client was used for a refused key")

    for name in ("generate_presigned_url", "generate_presigned_post", "_make_api_call", "get_paginator"):
        monkeypatch.setattr(store._client, name, no_calls)
    with pytest.raises(KeyOwnershipError) as caught:
        call(store)
    assert OTHER not in str(caught.value)


def test_iter_all_objects_stays_under_recordings(store: ObjectStore) -> None:
    with pytest.raises(ValidationError):
        list(store.iter_all_objects("secrets/"))


# --- objects ----------------------------------------------------------------


def test_head_tags_delete(store: ObjectStore) -> None:
    store._client.put_object(Bucket=BUCKET, Key=KEY, Body=b"x" * 10, ContentType="video/mp4",
                             Metadata={"sha256": "ab"})  # fmt: skip
    info = store.head(KEY, owner=USER)
    assert (info.size, info.content_type, dict(info.metadata)) == (10, "video/mp4", {"sha256": "ab"})
    assert info.etag and '"' not in info.etag
    store.put_tags(KEY, {"sha256": "cd"}, owner=USER)
    assert store._client.get_object_tagging(Bucket=BUCKET, Key=KEY)["TagSet"] == [{"Key": "sha256", "Value": "cd"}]
    result = store.delete([KEY], owner=USER)
    assert result.deleted == (KEY,) and result.errors == ()
    with pytest.raises(NotFound):
        store.head(KEY, owner=USER)
    assert store.delete([], owner=USER).deleted == ()


def test_iter_objects_pages(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTO_S3_DEFAULT_MAX_KEYS", "2")  # force several pages
    keys = [f"recordings/{USER}/2024/01/r{i}/thumb.jpg" for i in range(5)]
    for key in keys:
        store._client.put_object(Bucket=BUCKET, Key=key, Body=b"j")
    store._client.put_object(Bucket=BUCKET, Key=OTHER_KEY, Body=b"o")
    assert [o.key for o in store.iter_objects(f"recordings/{USER}/", owner=USER)] == keys
    assert len(list(store.iter_all_objects())) == 6


def test_multipart_lifecycle(store: ObjectStore) -> None:
    upload_id = store.create_multipart(KEY, owner=USER, content_type="video/mp4", metadata={"sha256": "ab"})
    client = store._client
    etags = []
    for number, body in ((1, b"a" * MIN_PART_SIZE), (2, b"tail")):
        r = client.upload_part(Bucket=BUCKET, Key=KEY, UploadId=upload_id, PartNumber=number, Body=body)
        etags.append((number, r["ETag"]))
    parts = store.list_parts(KEY, upload_id, owner=USER)
    assert [(p.part_number, p.size) for p in parts] == [(1, MIN_PART_SIZE), (2, 4)]
    store.complete_multipart(KEY, upload_id, reversed(etags), owner=USER)  # any order is fine
    info = store.head(KEY, owner=USER)
    assert info.size == MIN_PART_SIZE + 4 and info.metadata == {"sha256": "ab"}
    other = store.create_multipart(KEY, owner=USER, content_type="video/mp4")
    store.abort_multipart(KEY, other, owner=USER)
    assert "Uploads" not in client.list_multipart_uploads(Bucket=BUCKET)
    with pytest.raises(NotFound):
        store.list_parts(KEY, other, owner=USER)


def test_download_to(store: ObjectStore, tmp_path) -> None:
    store._client.put_object(Bucket=BUCKET, Key=KEY, Body=b"v" * (3 * MIB + 1))
    seen: list[tuple[int, int]] = []
    target = store.download_to(KEY, tmp_path / "copy.mp4", owner=USER, progress=lambda d, t: seen.append((d, t)))
    assert target.read_bytes() == b"v" * (3 * MIB + 1)
    assert seen[-1] == (3 * MIB + 1, 3 * MIB + 1) and len(seen) >= 4
    with pytest.raises(NotFound):
        store.download_to(KEY.replace("original", "missing"), tmp_path / "gone.mp4", owner=USER)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.mp4"]  # no partial file left


def test_health(store: ObjectStore) -> None:
    status = store.health()
    assert status.ok and status.latency_ms >= 0 and BUCKET in status.message
    missing = ObjectStore(S3Settings("no-such-bucket-here", "us-east-1", "AKIDUNIT", "unit-secret-value"))
    status = missing.health()
    assert not status.ok


def test_missing_bucket_is_named(store: ObjectStore) -> None:
    missing = ObjectStore(S3Settings("no-such-bucket-here", "us-east-1", "AKIDUNIT", "unit-secret-value"))
    with pytest.raises(BucketNotFound, match="no-such-bucket-here"):
        list(missing.iter_objects(f"recordings/{USER}/", owner=USER))


# --- client and errors --------------------------------------------------------


def test_client_configuration() -> None:
    store = ObjectStore(S3, max_pool_connections=24)
    config = store._client.meta.config
    assert config.signature_version == "s3v4"
    assert config.retries == {"mode": "standard", "total_max_attempts": 5}
    assert (config.connect_timeout, config.read_timeout, config.max_pool_connections) == (10, 120, 24)
    assert config.s3["addressing_style"] == "virtual"
    custom = ObjectStore(S3Settings(BUCKET, "eu-west-1", "AKIDUNIT", "s", endpoint_url="http://127.0.0.1:9"))
    assert custom._client.meta.config.s3["addressing_style"] == "path"
    assert "unit-secret-value" not in repr(store) and "AKIDUNIT" not in repr(store)


def test_from_settings() -> None:
    with pytest.raises(ConfigError):
        ObjectStore.from_settings(Settings(mode="demo"))
    store = ObjectStore.from_settings(Settings(mode="cloud", s3=S3, transfer_concurrency=16))
    assert store._client.meta.config.max_pool_connections == 32
    assert store.bucket == BUCKET


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (client_error("NoSuchBucket", 404), BucketNotFound, "does not exist"),
        (client_error("NoSuchKey", 404), NotFound, "not in the bucket"),
        (client_error("404", 404), NotFound, "not in the bucket"),
        (client_error("NoSuchUpload", 404), NotFound, "upload"),
        (client_error("AccessDenied", 403), StorageAccessDenied, "not allowed"),
        (client_error("InvalidAccessKeyId", 403), StorageAccessDenied, "access key"),
        (client_error("SignatureDoesNotMatch", 403), StorageAccessDenied, "secret key"),
        (client_error("ExpiredToken", 400), StorageAccessDenied, "expired"),
        (client_error("403", 403), StorageAccessDenied, "not allowed"),
        (client_error("SlowDown", 503), StorageUnavailable, "busy"),
        (client_error("Weird", 500), StorageUnavailable, "busy"),
        (client_error("EntityTooSmall", 400), StorageError, "EntityTooSmall"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), StorageUnavailable, "reach"),
        (NoCredentialsError(), StorageAccessDenied, "credentials"),
    ],
)
def test_translate_error(exc: Exception, kind: type, words: str) -> None:
    error = translate_error(exc, action="read the file", bucket=BUCKET)
    assert type(error) is kind and words in str(error)
    assert "unit-secret-value" not in str(error) and "AKIDUNIT" not in str(error)


def test_unreachable_endpoint_is_reported_not_raised() -> None:
    s3 = S3Settings(BUCKET, "us-east-1", "AKIDUNIT", "unit-secret-value", endpoint_url="http://127.0.0.1:9")
    status = ObjectStore(s3, max_attempts=1).health()
    assert not status.ok and "reach" in status.message and "unit-secret-value" not in status.message
    with pytest.raises(StorageUnavailable):
        ObjectStore(s3, max_attempts=1).head(KEY, owner=USER)
