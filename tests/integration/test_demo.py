"""Demo mode's embedded backends start once and answer over real HTTP."""

from __future__ import annotations

import boto3
import requests
from botocore.config import Config

from lib.demo import DEMO_BUCKET, DEMO_EMAIL, DEMO_PASSWORD, cors_configuration, start_demo

ORIGIN = "http://localhost:8501"


def _client(backends):
    s3 = backends.s3
    return boto3.client("s3", endpoint_url=s3.endpoint_url, region_name=s3.region,
                        aws_access_key_id=s3.access_key_id, aws_secret_access_key=s3.secret_access_key,
                        config=Config(signature_version="s3v4"))


def test_demo_backends_start_once_on_loopback_with_a_bucket() -> None:
    first = start_demo([ORIGIN])
    assert start_demo([ORIGIN]) is first
    assert first.s3.endpoint_url.startswith("http://127.0.0.1:")
    assert first.s3.bucket == DEMO_BUCKET
    client = _client(first)
    client.put_object(Bucket=DEMO_BUCKET, Key="recordings/x/probe.txt", Body=b"hello")
    url = client.generate_presigned_url("get_object", Params={"Bucket": DEMO_BUCKET,
                                                              "Key": "recordings/x/probe.txt"})
    assert "X-Amz-Signature" in url  # s3v4, not SigV2
    assert requests.get(url, timeout=10).content == b"hello"
    client.delete_object(Bucket=DEMO_BUCKET, Key="recordings/x/probe.txt")


def test_demo_bucket_allows_the_app_origin_for_browser_uploads() -> None:
    backends = start_demo([ORIGIN])
    rules = _client(backends).get_bucket_cors(Bucket=DEMO_BUCKET)["CORSRules"]
    assert ORIGIN in rules[0]["AllowedOrigins"]
    assert {"PUT", "GET"} <= set(rules[0]["AllowedMethods"])
    assert "ETag" in rules[0]["ExposeHeaders"]
    assert cors_configuration([ORIGIN])["CORSRules"][0]["ExposeHeaders"] == rules[0]["ExposeHeaders"]


def test_demo_account_is_seeded_and_database_is_private_to_the_process() -> None:
    from lib.auth import DemoAuth

    backends = start_demo([ORIGIN])
    assert backends.email == DEMO_EMAIL
    session = DemoAuth(backends.db_path).sign_in(DEMO_EMAIL, DEMO_PASSWORD)
    assert session.user_id == backends.user_id
    assert backends.db_path.is_relative_to(backends.workdir)
