"""ObjectStore over real HTTP against SeaweedFS: the presigned URLs work end to end."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import requests

from lib import storage
from lib.errors import BucketNotFound, KeyOwnershipError, NotFound, PulseVaultError
from lib.settings import MIB, S3Settings
from lib.storage import MIN_PART_SIZE, ObjectStore, content_disposition

USER = "0b6f3c5e-5a55-4c1e-9d7c-1f2a3b4c5d6e"
OTHER = "9f1e2d3c-4b5a-4968-8776-655443322110"
RECORD = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
KEY = f"recordings/{USER}/2024/01/{RECORD}/original.avi"
OTHER_KEY = f"recordings/{OTHER}/2024/01/{RECORD}/original.avi"


@pytest.fixture
def store(s3_settings: S3Settings) -> ObjectStore:
    return ObjectStore(s3_settings)


def put(store: ObjectStore, body: bytes, key: str = KEY) -> None:
    url = store.presign_put(key, owner=USER, content_type="video/x-msvideo", metadata={"sha256": "abc"})
    headers = {"Content-Type": "video/x-msvideo", "x-amz-meta-sha256": "abc"}
    requests.put(url, data=body, headers=headers, timeout=30).raise_for_status()


def test_presigned_put_then_get(store: ObjectStore) -> None:
    body = os.urandom(300_000)
    put(store, body)
    info = store.head(KEY, owner=USER)
    assert (info.size, info.content_type, info.metadata) == (len(body), "video/x-msvideo", {"sha256": "abc"})
    response = requests.get(store.presign_get(KEY, owner=USER), timeout=30)
    assert response.status_code == 200 and response.content == body


def test_range_request_on_presigned_get(store: ObjectStore) -> None:
    body = os.urandom(100_000)
    put(store, body)
    response = requests.get(store.presign_get(KEY, owner=USER), headers={"Range": "bytes=1000-1999"}, timeout=30)
    assert response.status_code == 206
    assert response.content == body[1000:2000]
    assert response.headers["Content-Range"] == f"bytes 1000-1999/{len(body)}"


def test_download_name_in_content_disposition(store: ObjectStore) -> None:
    put(store, b"video")
    url = store.presign_get(KEY, owner=USER, download_name="Sitzung 3 – Müller.AVI", inline=False,
                            content_type="video/x-msvideo")  # fmt: skip
    response = requests.get(url, timeout=30)
    assert response.headers["Content-Disposition"] == content_disposition("Sitzung 3 – Müller.AVI", inline=False)
    assert response.headers["Content-Disposition"].startswith('attachment; filename="Sitzung 3 Muller.avi"')
    assert response.headers["Content-Type"] == "video/x-msvideo"


def test_multipart_with_presigned_parts(store: ObjectStore, s3_client) -> None:
    first, last = os.urandom(MIN_PART_SIZE), os.urandom(1234)
    upload_id = store.create_multipart(KEY, owner=USER, content_type="video/x-msvideo")
    etags = []
    for number, body in ((1, first), (2, last)):
        url = store.presign_part(KEY, upload_id, number, owner=USER, content_length=len(body))
        response = requests.put(url, data=body, timeout=60)
        response.raise_for_status()
        etags.append((number, response.headers["ETag"]))
    assert [p.part_number for p in store.list_parts(KEY, upload_id, owner=USER)] == [1, 2]
    store.complete_multipart(KEY, upload_id, etags, owner=USER)
    assert requests.get(store.presign_get(KEY, owner=USER), timeout=60).content == first + last
    assert "Uploads" not in s3_client.list_multipart_uploads(Bucket=store.bucket)


def test_abort_leaves_no_parts(store: ObjectStore, s3_client) -> None:
    upload_id = store.create_multipart(KEY, owner=USER, content_type="video/x-msvideo")
    url = store.presign_part(KEY, upload_id, 1, owner=USER, content_length=1000)
    requests.put(url, data=b"x" * 1000, timeout=30).raise_for_status()
    store.abort_multipart(KEY, upload_id, owner=USER)
    assert "Uploads" not in s3_client.list_multipart_uploads(Bucket=store.bucket)
    with pytest.raises(NotFound):
        store.list_parts(KEY, upload_id, owner=USER)


def test_cross_user_key_refused(store: ObjectStore, s3_client) -> None:
    s3_client.put_object(Bucket=store.bucket, Key=OTHER_KEY, Body=b"theirs")
    with pytest.raises(KeyOwnershipError):
        store.presign_get(OTHER_KEY, owner=USER)
    with pytest.raises(KeyOwnershipError):
        store.delete([OTHER_KEY], owner=USER)
    assert list(store.iter_objects(f"recordings/{USER}/", owner=USER)) == []
    assert s3_client.head_object(Bucket=store.bucket, Key=OTHER_KEY)["ContentLength"] == 6


def test_list_delete_download(store: ObjectStore, tmp_path) -> None:
    keys = [KEY, KEY.replace("original.avi", "thumb.jpg"), KEY.replace("original.avi", "preview.mp4")]
    for key in keys:
        put(store, key.encode(), key)
    assert sorted(o.key for o in store.iter_objects(f"recordings/{USER}/2024/", owner=USER)) == sorted(keys)
    assert store.download_to(keys[1], tmp_path / "t.jpg", owner=USER).read_bytes() == keys[1].encode()
    result = store.delete(keys, owner=USER)
    assert sorted(result.deleted) == sorted(keys) and not result.errors
    assert list(store.iter_objects(f"recordings/{USER}/", owner=USER)) == []


def test_download_goes_in_ranges_and_a_replaced_object_fails(store: ObjectStore, s3_client, tmp_path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "DOWNLOAD_RANGE", MIB)
    body = os.urandom(2 * MIB + 77)
    put(store, body)
    seen: list[int] = []
    assert store.download_to(KEY, tmp_path / "whole.avi", owner=USER,
                             progress=lambda done, total: seen.append(done)).read_bytes() == body
    assert MIB in seen and 2 * MIB in seen and seen[-1] == len(body)

    def replace_after_the_first_range(done: int, total: int) -> None:
        if done == MIB:
            s3_client.put_object(Bucket=store.bucket, Key=KEY, Body=os.urandom(len(body)))

    with pytest.raises(PulseVaultError):
        store.download_to(KEY, tmp_path / "mixed.avi", owner=USER, progress=replace_after_the_first_range)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whole.avi"]  # nothing of the mixed one stays
    put(store, b"", KEY)
    assert store.download_to(KEY, tmp_path / "empty.avi", owner=USER).read_bytes() == b""


def test_health_and_missing_bucket(store: ObjectStore, s3_settings: S3Settings) -> None:
    assert store.health().ok
    missing = ObjectStore(replace(s3_settings, bucket="not-created-bucket"))
    status = missing.health()
    assert not status.ok and "not-created-bucket" in status.message and "does not exist" in status.message
    with pytest.raises(BucketNotFound):
        list(missing.iter_objects(f"recordings/{USER}/", owner=USER))
