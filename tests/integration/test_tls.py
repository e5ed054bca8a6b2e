"""The on-premises TLS configuration: SeaweedFS serving S3 over HTTPS with a certificate from the lab's
own CA, and PulseVault trusting that CA through ``[s3] ca_bundle`` (boto3 calls, presigned transfers
and the links a browser gets), and saying what to set when it does not."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import requests

from lib.errors import StorageUnavailable
from lib.seaweedfs import SeaweedFS, TlsFiles, admin_identities, start_seaweedfs
from lib.settings import S3Settings
from lib.storage import ObjectStore
from lib.transfer import ObjectTarget, upload_file
from tests.support.seaweedfs import TEST_REGION
from tests.support.services import service_missing

USER = "0b6f3c5e-5a55-4c1e-9d7c-1f2a3b4c5d6e"
KEY = f"recordings/{USER}/2024/01/3fa85f64-5717-4562-b3fc-2c963f66afa6/original.avi"
BUCKET = "pulsevault-tls"


@dataclass(frozen=True)
class LabCa:
    ca_certificate: Path
    server: TlsFiles


def make_lab_ca(folder: Path) -> LabCa:
    """A CA of the lab's own and a certificate it signed for 127.0.0.1, with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        service_missing("openssl is not installed (apt-get install openssl)")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=PulseVault test lab CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return LabCa(folder / "ca.pem", TlsFiles(folder / "server.pem", folder / "server.key"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabCa, SeaweedFS, S3Settings]]:
    folder = tmp_path_factory.mktemp("tls")
    ca = make_lab_ca(folder)
    key, secret = "PVTLS" + os.urandom(6).hex().upper(), os.urandom(18).hex()
    server = start_seaweedfs(folder / "weed", identities=admin_identities(key, secret), tls=ca.server)
    try:
        server.wait_ready()
        assert server.https_url is not None
        settings = S3Settings(bucket=BUCKET, region=TEST_REGION, access_key_id=key, secret_access_key=secret,
                              endpoint_url=server.https_url, ca_bundle=str(ca.ca_certificate))
        ObjectStore(replace(settings, endpoint_url=server.endpoint_url))._client.create_bucket(Bucket=BUCKET)
        yield ca, server, settings
    finally:
        server.stop()


def test_https_with_the_labs_ca_works_end_to_end(lab, tmp_path: Path) -> None:
    ca, _server, settings = lab
    store = ObjectStore(settings)
    assert store.health().ok
    recording = tmp_path / "r.avi"
    recording.write_bytes(os.urandom(11 * 1024 * 1024))  # two parts through presigned HTTPS URLs
    result = upload_file(store, ObjectTarget(KEY, USER, "video/x-msvideo"), recording)
    assert result.parts == 2 and store.head(KEY, owner=USER).size == recording.stat().st_size
    link = store.presign_get(KEY, owner=USER)
    assert link.startswith("https://")
    assert requests.get(link, verify=str(ca.ca_certificate), timeout=30).content == recording.read_bytes()


def test_without_the_labs_ca_the_message_says_what_to_set(lab, tmp_path: Path) -> None:
    _ca, _server, settings = lab
    untrusting = ObjectStore(replace(settings, ca_bundle=None))
    status = untrusting.health()
    assert not status.ok and "ca_bundle" in status.message
    recording = tmp_path / "r.avi"
    recording.write_bytes(b"RIFF" * 1000)
    with pytest.raises(StorageUnavailable, match="ca_bundle"):
        upload_file(untrusting, ObjectTarget(KEY, USER, "video/x-msvideo"), recording)
