"""S3 test doubles: no test reaches real AWS, and moto where an in-process double is the right tool.

The unit tier runs moto's ``mock_aws`` in-process. tests/integration/test_faults.py runs moto's
server because it stops and restarts storage on the same port mid-upload while the objects
survive (moto keeps them in this process), which a real server on disk cannot do in a test's
time. Everything else that needs a real S3 server uses SeaweedFS (tests/support/seaweedfs.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import boto3
import pytest
from botocore.config import Config

from lib.keys import Owner
from lib.storage import DeleteResult, ObjectStore

MOTO_REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS or read a developer's credentials."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_S3_ENDPOINT_URL", "AWS_CA_BUNDLE", "SUPABASE_URL",
                 "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "PULSEVAULT_ADMIN_EMAILS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", MOTO_REGION)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_S3_BUCKET", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


def reset_moto_buckets(endpoint: str, *, create: str) -> None:
    """Empty and remove every bucket on a moto server, then create ``create``.

    moto keeps one state per process, shared by every server in it (and by ``mock_aws``), so a
    server started fresh may still hold an earlier test's buckets.
    """
    client = boto3.client("s3", endpoint_url=endpoint, region_name=MOTO_REGION, aws_access_key_id="testing",
                          aws_secret_access_key="testing-secret", config=Config(signature_version="s3v4"))
    for bucket in client.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
            client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys})
        client.delete_bucket(Bucket=name)
    client.create_bucket(Bucket=create)


class RefusesDeletes:
    """The real store, except that its delete leaves the keys ``refused`` picks in the bucket: what a bucket that
    refuses some deletions looks like. ``silent``: it also reports them deleted (no error for the caller)."""

    def __init__(self, store: ObjectStore, refused: Callable[[str], bool], *, silent: bool = False) -> None:
        self._store, self._refused, self._silent = store, refused, silent

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def delete(self, keys: Iterable[str], *, owner: Owner) -> DeleteResult:
        keys = list(keys)
        kept = [k for k in keys if self._refused(k)]
        result = self._store.delete([k for k in keys if k not in kept], owner=owner)
        refusals = () if self._silent else tuple((k, "AccessDenied") for k in kept)
        return DeleteResult(result.deleted, (*result.errors, *refusals))
