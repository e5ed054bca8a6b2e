"""S3 fixtures: moto in-process for unit tests, one ThreadedMotoServer per
module (reset before each test) for integration tests over real HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from lib.demo import DEMO_BUCKET
from lib.settings import S3Settings
from tests.support.services import free_port

TEST_BUCKET = "pulsevault-test"
TEST_REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS or read a developer's credentials."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_S3_ENDPOINT_URL", "SUPABASE_URL", "SUPABASE_ANON_KEY",
                 "SUPABASE_SERVICE_ROLE_KEY", "PULSEVAULT_ADMIN_EMAILS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", TEST_REGION)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_S3_BUCKET", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 for the module; yields its endpoint URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def reset_buckets(endpoint: str, *, create: str | None = TEST_BUCKET) -> None:
    """Empty and remove every bucket but the demo's, then create ``create``.

    moto keeps one state per process, shared by every server in it, and the
    app's demo backends (started in-process by AppTest) live there too. Its
    ``/moto-api/reset`` would wipe the demo bucket under them, so tests remove
    only their own buckets.
    """
    client = _client(endpoint)
    for bucket in client.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        if name == DEMO_BUCKET:
            continue
        for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
            client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys})
        client.delete_bucket(Bucket=name)
    if create:
        client.create_bucket(Bucket=create)


def _client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=TEST_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing-secret",
        config=Config(signature_version="s3v4"),
    )


@pytest.fixture
def s3_endpoint(moto_server: str) -> str:
    """The module's moto server with only an empty test bucket (and the demo's, if running)."""
    reset_buckets(moto_server)
    return moto_server


@pytest.fixture
def s3_settings(s3_endpoint: str) -> S3Settings:
    return S3Settings(
        bucket=TEST_BUCKET,
        region=TEST_REGION,
        access_key_id="testing",
        secret_access_key="testing-secret",
        endpoint_url=s3_endpoint,
    )


@pytest.fixture
def s3_client(s3_endpoint: str):
    """A raw boto3 client on the moto server, for tests to inspect the bucket."""
    return _client(s3_endpoint)
