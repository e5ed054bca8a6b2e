"""Cloud mode without the cloud: a moto S3 server and the Supabase stand-in, each
in its own process, and the environment that points the app at them."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import requests
from botocore.config import Config

from lib.demo import cors_configuration
from tests.support.app_server import REPO
from tests.support.postgres import PostgresMissing, find_pg_bin
from tests.support.services import free_port, service_missing

BUCKET = "pulsevault-cloud-e2e"
REGION = "us-east-1"
ACCESS_KEY_ID = "AKIACLOUDE2E"
SECRET_ACCESS_KEY = "cloud-e2e-secret-that-must-never-leak"
USER_EMAIL = "researcher@lab.test"
USER_PASSWORD = "pulse-cloud-2026"
SECOND_EMAIL = "colleague@lab.test"


@dataclass(frozen=True)
class CloudBackends:
    s3_endpoint: str
    supabase_url: str
    anon_key: str = field(repr=False)
    service_role_key: str = field(repr=False)
    jwt_secret: str = field(repr=False)
    """The stand-in signs its JWTs with it; tests look for it where it must never appear."""
    pg_dsn: str

    def app_env(self, *, origins: str = "") -> dict[str, str]:
        env = {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_REGION": REGION,
            "AWS_S3_BUCKET": BUCKET,
            "AWS_S3_ENDPOINT_URL": self.s3_endpoint,
            "SUPABASE_URL": self.supabase_url,
            "SUPABASE_ANON_KEY": self.anon_key,
            "SUPABASE_SERVICE_ROLE_KEY": self.service_role_key,
        }
        if origins:
            env["PULSEVAULT_APP_ORIGINS"] = origins
        return env

    def s3_client(self):
        return boto3.client("s3", endpoint_url=self.s3_endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
                            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


@contextmanager
def cloud_backends(log_dir: Path) -> Iterator[CloudBackends]:
    """Start moto (S3) and the Supabase stand-in (on a throwaway PostgreSQL)."""
    try:
        find_pg_bin()
    except PostgresMissing as exc:
        service_missing(str(exc))
    jwt_secret = "cloud-e2e-jwt-" + secrets.token_urlsafe(24)
    with ExitStack() as stack:
        s3_endpoint = stack.enter_context(_moto_process(log_dir))
        standin = stack.enter_context(_standin_process(log_dir, jwt_secret))
        backends = CloudBackends(s3_endpoint=s3_endpoint, supabase_url=standin["url"],
                                 anon_key=standin["anon_key"], service_role_key=standin["service_role_key"],
                                 jwt_secret=jwt_secret, pg_dsn=standin["pg_dsn"])
        client = backends.s3_client()
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=cors_configuration(["*"]))
        yield backends


@contextmanager
def _moto_process(log_dir: Path) -> Iterator[str]:
    port = free_port()
    with (log_dir / "moto.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_for(lambda: requests.get(f"{url}/moto-api/", timeout=1).ok, proc, "moto server")
            yield url
        finally:
            _stop(proc)


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


def _wait_for(check, proc: subprocess.Popen, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            if check():
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout_s} s")


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
