"""Demo mode's embedded backends: SeaweedFS started in the background, a bucket with CORS, and links
that keep the promises the page makes (refused after their expiry, refused when changed)."""

from __future__ import annotations

import datetime
import time
from urllib.parse import urlsplit

import boto3
import botocore.auth
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from lib import library
from lib.auth import DemoAuth
from lib.demo import DEMO_BUCKET, DEMO_EMAIL, DEMO_PASSWORD, cors_configuration, start_demo
from lib.records import Consent, NewRecord, ResearchFields
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.services import build_services
from lib.settings import MIN_PRESIGN_EXPIRY_S, Settings
from tests.support.audit import trail_of

ORIGIN = "http://localhost:8501"


def _client(backends):
    s3 = backends.s3
    return boto3.client("s3", endpoint_url=s3.endpoint_url, region_name=s3.region,
                        aws_access_key_id=s3.access_key_id, aws_secret_access_key=s3.secret_access_key,
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def test_demo_backends_start_once_on_loopback_with_a_bucket() -> None:
    first = start_demo([ORIGIN])
    assert start_demo([ORIGIN]) is first
    first.wait_for_storage()
    assert urlsplit(first.s3.endpoint_url).hostname == "127.0.0.1"
    assert first.s3.bucket == DEMO_BUCKET
    client = _client(first)
    client.put_object(Bucket=DEMO_BUCKET, Key="recordings/x/probe.txt", Body=b"hello")
    url = client.generate_presigned_url("get_object", Params={"Bucket": DEMO_BUCKET,
                                                              "Key": "recordings/x/probe.txt"})
    assert "X-Amz-Signature" in url  # s3v4, not SigV2
    assert requests.get(url, timeout=10).content == b"hello"
    client.delete_object(Bucket=DEMO_BUCKET, Key="recordings/x/probe.txt")


def test_the_demo_server_checks_credentials() -> None:
    backends = start_demo([ORIGIN])
    backends.wait_for_storage()
    assert requests.get(f"{backends.s3.endpoint_url}/{DEMO_BUCKET}/", timeout=10).status_code == 403
    wrong = boto3.client("s3", endpoint_url=backends.s3.endpoint_url, region_name=backends.s3.region,
                         aws_access_key_id=backends.s3.access_key_id, aws_secret_access_key="guessed",
                         config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        wrong.list_objects_v2(Bucket=DEMO_BUCKET)


def test_demo_bucket_allows_the_app_origin_for_browser_uploads() -> None:
    backends = start_demo([ORIGIN])
    backends.wait_for_storage()
    rules = _client(backends).get_bucket_cors(Bucket=DEMO_BUCKET)["CORSRules"]
    assert ORIGIN in rules[0]["AllowedOrigins"]
    assert {"PUT", "GET"} <= set(rules[0]["AllowedMethods"])
    assert "ETag" in rules[0]["ExposeHeaders"]
    assert cors_configuration([ORIGIN])["CORSRules"][0]["ExposeHeaders"] == rules[0]["ExposeHeaders"]
    preflight = {"Access-Control-Request-Method": "PUT"}
    url = f"{backends.s3.endpoint_url}/{DEMO_BUCKET}/recordings/x/original.avi"
    ours = requests.options(url, headers={"Origin": ORIGIN, **preflight}, timeout=10)
    assert ours.ok and ours.headers["Access-Control-Allow-Origin"] == ORIGIN
    theirs = requests.options(url, headers={"Origin": "http://elsewhere.test", **preflight}, timeout=10)
    assert "Access-Control-Allow-Origin" not in theirs.headers


def test_demo_account_is_seeded_and_database_is_private_to_the_process() -> None:
    backends = start_demo([ORIGIN])
    assert backends.email == DEMO_EMAIL
    session = DemoAuth(backends.db_path).sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    assert session.user_id == backends.user_id
    assert backends.db_path.is_relative_to(backends.workdir)
    assert backends.storage is not None and backends.storage.server.data_dir.is_relative_to(backends.workdir)


def test_a_demo_share_link_stops_working_at_its_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21 item 5: a 1-minute link worked 35 s past its expiry when the demo ran moto."""
    services = build_services(Settings(mode="demo"), origins=[ORIGIN])
    demo = services.demo
    assert demo is not None
    repo, server = SqliteRepository(demo.db_path, demo.user_id), SqliteServerRecords(demo.db_path, demo.user_id)
    record_id = "6c0f9c56-1d1e-4a8a-9a57-3f1d1e7c2b10"
    key = f"recordings/{demo.user_id}/2024/01/{record_id}/original.avi"
    _client(demo).put_object(Bucket=DEMO_BUCKET, Key=key, Body=b"RIFF-demo")
    server.reserve(NewRecord(id=record_id, s3_key=key, bucket=DEMO_BUCKET, original_name="demo.avi",
                             content_type="video/x-msvideo", size_bytes=9, research=ResearchFields()),
                   services.settings.quota_bytes)
    server.mark_ready(record_id, size_bytes=9, sha256=None, video=None, thumbnail_key=None, preview_key=None)
    repo.set_consent(record_id, Consent.SHAREABLE, None)
    # Signed as if 56 s ago, so the shortest link the page offers (60 s) has 4 s left.
    signed_at = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(seconds=56)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: signed_at)
    link = library.share_link(services.store, repo, record_id, MIN_PRESIGN_EXPIRY_S, services.settings,
                              trail=trail_of(repo))
    monkeypatch.undo()
    assert requests.get(link.url, timeout=10).content == b"RIFF-demo"
    assert requests.get(link.url.replace("original.avi", "original.AVI"), timeout=10).status_code == 403
    time.sleep(max(0.0, (signed_at + datetime.timedelta(seconds=61)
                         - datetime.datetime.now(datetime.UTC).replace(tzinfo=None)).total_seconds()))
    expired = requests.get(link.url, timeout=10)
    assert expired.status_code == 403 and "expired" in expired.text
    library.delete_records(services.store, repo, server, [record_id], trail=trail_of(repo))
