"""ObjectStore.list_multipart_uploads over real HTTP against SeaweedFS (and paging with a stub: a
second page needs over a thousand unfinished uploads, too many to make in a test)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from lib.errors import BucketNotFound, KeyOwnershipError, StorageAccessDenied
from lib.settings import S3Settings
from lib.storage import MultipartUploadInfo, ObjectStore

USER = "0b6f3c5e-5a55-4c1e-9d7c-1f2a3b4c5d6e"
OTHER = "9f1e2d3c-4b5a-4968-8776-655443322110"
PREFIX = f"recordings/{USER}/"


def key(user: str, record: str) -> str:
    return f"recordings/{user}/2024/01/{record}/original.avi"


@pytest.fixture
def store(s3_settings: S3Settings) -> ObjectStore:
    return ObjectStore(s3_settings)


def test_lists_only_the_callers_unfinished_uploads(store: ObjectStore) -> None:
    mine = {store.create_multipart(key(USER, r), owner=USER, content_type="video/x-msvideo"): key(USER, r)
            for r in ("a", "b", "c")}
    store.create_multipart(key(OTHER, "d"), owner=OTHER, content_type="video/x-msvideo")
    finished = store.create_multipart(key(USER, "e"), owner=USER, content_type="video/x-msvideo")
    store.abort_multipart(key(USER, "e"), finished, owner=USER)

    listed = store.list_multipart_uploads(PREFIX, owner=USER)
    assert {u.upload_id: u.key for u in listed} == mine
    assert all(isinstance(u, MultipartUploadInfo) and isinstance(u.initiated, datetime) for u in listed)
    narrower = store.list_multipart_uploads(f"recordings/{USER}/2024/01/b/", owner=USER)
    assert [u.key for u in narrower] == [key(USER, "b")]


def test_another_users_prefix_is_refused_before_anything_is_asked(store: ObjectStore) -> None:
    store.create_multipart(key(OTHER, "d"), owner=OTHER, content_type="video/x-msvideo")
    with Stubber(store._client) as stub:  # no response queued: any S3 call would fail the test
        for prefix in (f"recordings/{OTHER}/", "recordings/", ""):
            with pytest.raises(KeyOwnershipError):
                store.list_multipart_uploads(prefix, owner=USER)
        stub.assert_no_pending_responses()


def test_follows_every_page(store: ObjectStore) -> None:
    when = datetime(2024, 1, 2, tzinfo=UTC)
    first = {"Bucket": store.bucket, "IsTruncated": True, "NextKeyMarker": key(USER, "a"),
             "NextUploadIdMarker": "u1", "Uploads": [{"Key": key(USER, "a"), "UploadId": "u1", "Initiated": when}]}
    second = {"Bucket": store.bucket, "IsTruncated": False,
              "Uploads": [{"Key": key(USER, "b"), "UploadId": "u2", "Initiated": when}]}
    with Stubber(store._client) as stub:
        stub.add_response("list_multipart_uploads", first, {"Bucket": store.bucket, "Prefix": PREFIX})
        stub.add_response("list_multipart_uploads", second,
                          {"Bucket": store.bucket, "Prefix": PREFIX, "KeyMarker": key(USER, "a"),
                           "UploadIdMarker": "u1"})
        listed = store.list_multipart_uploads(PREFIX, owner=USER)
        stub.assert_no_pending_responses()
    assert listed == [MultipartUploadInfo(key(USER, "a"), "u1", when), MultipartUploadInfo(key(USER, "b"), "u2", when)]


def test_a_listed_key_outside_the_prefix_is_refused(store: ObjectStore) -> None:
    # S3 filters by prefix, but a misbehaving endpoint must not hand us another user's upload to resume.
    page = {"Bucket": store.bucket, "IsTruncated": False, "Uploads": [{"Key": key(OTHER, "x"), "UploadId": "u"}]}
    with Stubber(store._client) as stub:
        stub.add_response("list_multipart_uploads", page, {"Bucket": store.bucket, "Prefix": PREFIX})
        with pytest.raises(KeyOwnershipError):
            store.list_multipart_uploads(PREFIX, owner=USER)


def test_errors_are_translated(store: ObjectStore, s3_settings: S3Settings) -> None:
    missing = ObjectStore(replace(s3_settings, bucket="not-created-bucket"))
    with pytest.raises(BucketNotFound, match="not-created-bucket"):
        missing.list_multipart_uploads(PREFIX, owner=USER)
    with Stubber(store._client) as stub:
        stub.add_client_error("list_multipart_uploads", "AccessDenied", http_status_code=403)
        with pytest.raises(StorageAccessDenied, match="look up unfinished uploads"):
            store.list_multipart_uploads(PREFIX, owner=USER)
