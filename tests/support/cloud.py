"""Cloud mode without the cloud: a lab's own S3 (SeaweedFS) and the Supabase stand-in, each in its
own process, and the environment that points the app at them.

The S3 side is the README's on-premises configuration, verbatim from docs/on-premises/: the
identities file (an admin key that sets the bucket up, and the app's key limited to its bucket),
the bucket's lifecycle rule for unfinished uploads and, once the app's origin is known
(:meth:`CloudBackends.allow_origins`), its CORS rule. The app runs with the narrow key, path-style.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import requests
from botocore.config import Config

from tests.support.app_server import REPO
from tests.support.postgres import PostgresMissing, find_pg_bin
from tests.support.seaweedfs import start_ready
from tests.support.services import service_missing

BUCKET = "pulsevault-cloud-e2e"
REGION = "us-east-1"
ACCESS_KEY_ID = "AKIACLOUDE2E"
SECRET_ACCESS_KEY = "cloud-e2e-secret-that-must-never-leak"
ADMIN_ACCESS_KEY_ID = "AKIACLOUDADMIN"
ADMIN_SECRET_ACCESS_KEY = "cloud-e2e-admin-secret-" + secrets.token_urlsafe(12)
ON_PREMISES = REPO / "docs" / "on-premises"
"""The README's on-premises configuration files, with placeholders this module fills in."""
USER_EMAIL = "researcher@lab.test"
USER_PASSWORD = "pulse-cloud-2026"
SECOND_EMAIL = "colleague@lab.test"
SESSION_KEY = "cloud-e2e-session-key-" + secrets.token_urlsafe(24)
"""The app's ``session_key``: kept sessions (sql/006) outlive an app restart because this does."""


@dataclass(frozen=True)
class CloudBackends:
    s3_endpoint: str
    supabase_url: str
    anon_key: str = field(repr=False)
    service_role_key: str = field(repr=False)
    jwt_secret: str = field(repr=False)
    """The stand-in signs its JWTs with it; tests look for it where it must never appear."""
    pg_dsn: str

    def app_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_REGION": REGION,
            "AWS_S3_BUCKET": BUCKET,
            "AWS_S3_ENDPOINT_URL": self.s3_endpoint,
            "SUPABASE_URL": self.supabase_url,
            "SUPABASE_ANON_KEY": self.anon_key,
            "SUPABASE_SERVICE_ROLE_KEY": self.service_role_key,
            "PULSEVAULT_SESSION_KEY": SESSION_KEY,
        }

    def s3_client(self):
        """The app's own key (bucket-scoped), as the app uses it."""
        return _client(self.s3_endpoint, ACCESS_KEY_ID, SECRET_ACCESS_KEY)

    def admin_client(self):
        """The admin key that set the bucket up (README: only the lab's storage admin holds it)."""
        return _client(self.s3_endpoint, ADMIN_ACCESS_KEY_ID, ADMIN_SECRET_ACCESS_KEY)

    def allow_origins(self, origins: list[str]) -> None:
        """Put the README's CORS rule (docs/on-premises/cors.json) on the bucket for these app origins."""
        rule = on_premises_document("cors.json")
        rule["CORSRules"][0]["AllowedOrigins"] = origins
        self.admin_client().put_bucket_cors(Bucket=BUCKET, CORSConfiguration=rule)


def on_premises_document(name: str) -> dict:
    """One of docs/on-premises/*.json with this deployment's bucket and keys in place of the placeholders."""
    text = (ON_PREMISES / name).read_text()
    for placeholder, value in (("YOUR_BUCKET", BUCKET), ("ADMIN_ACCESS_KEY", ADMIN_ACCESS_KEY_ID),
                               ("ADMIN_SECRET_KEY", ADMIN_SECRET_ACCESS_KEY), ("APP_ACCESS_KEY", ACCESS_KEY_ID),
                               ("APP_SECRET_KEY", SECRET_ACCESS_KEY)):
        text = text.replace(placeholder, value)
    return json.loads(text)


def _client(endpoint: str, key: str, secret: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key,
                        aws_secret_access_key=secret,
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


@contextmanager
def cloud_backends(log_dir: Path) -> Iterator[CloudBackends]:
    """Start SeaweedFS (S3, set up as the README says) and the Supabase stand-in (on a throwaway PostgreSQL)."""
    try:
        find_pg_bin()
    except PostgresMissing as exc:
        service_missing(str(exc))
    jwt_secret = "cloud-e2e-jwt-" + secrets.token_urlsafe(24)
    with ExitStack() as stack:
        s3_endpoint = stack.enter_context(_seaweedfs_process(log_dir))
        standin = stack.enter_context(_standin_process(log_dir, jwt_secret))
        backends = CloudBackends(s3_endpoint=s3_endpoint, supabase_url=standin["url"],
                                 anon_key=standin["anon_key"], service_role_key=standin["service_role_key"],
                                 jwt_secret=jwt_secret, pg_dsn=standin["pg_dsn"])
        admin = backends.admin_client()
        admin.create_bucket(Bucket=BUCKET)
        admin.put_bucket_lifecycle_configuration(Bucket=BUCKET,
                                                 LifecycleConfiguration=on_premises_document("lifecycle.json"))
        yield backends


@contextmanager
def _seaweedfs_process(log_dir: Path) -> Iterator[str]:
    server = start_ready(log_dir / "seaweedfs", on_premises_document("seaweedfs-identities.json"))
    try:
        yield server.endpoint_url
    finally:
        server.stop()


@contextmanager
def _standin_process(log_dir: Path, jwt_secret: str) -> Iterator[dict]:
    with (log_dir / "standin.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.supabase", "--throwaway-pg", "--jwt-secret", jwt_secret,
             "--user", f"{USER_EMAIL}:{USER_PASSWORD}", "--user", f"{SECOND_EMAIL}:{USER_PASSWORD}"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True,
        )
        try:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the Supabase stand-in did not start; see {log_dir / 'standin.log'}")
            yield json.loads(line)
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def http_sign_in(backends: CloudBackends, email: str, password: str = USER_PASSWORD) -> dict:
    """GoTrue's password grant, as any client would send it: the session JSON (access and refresh token)."""
    response = requests.post(f"{backends.supabase_url}/auth/v1/token", params={"grant_type": "password"},
                             headers={"apikey": backends.anon_key}, json={"email": email, "password": password},
                             timeout=10)
    response.raise_for_status()
    return response.json()
