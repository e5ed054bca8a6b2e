"""Exports against SeaweedFS (real S3 over HTTP, real presigned links): the download route streams the zip
only for a live ticket of the browser's own user and names objects changed since the export was
prepared; the manifest's links and its fetch script download, resume and check every file."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
import warnings
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.applications import Starlette

from lib.auth import Session
from lib.errors import StorageError
from lib.export import (
    Delivery,
    ExportBackends,
    ExportRequest,
    ExportTickets,
    Layout,
    Selection,
    export_routes,
    prepare_export,
)
from lib.export.archive import export_zip
from lib.export.routes import REFUSED, SIGN_IN_FIRST
from lib.records import Consent
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.rppg.ground_truth import load_ground_truth
from lib.sessions import SESSION_COOKIE, ClientInfo, SqliteSessionStore, TokenCipher
from lib.settings import Settings
from lib.storage import ObjectStore
from tests.support.audit import trail_of
from tests.support.export_world import add_recording, bids_truth, check_sums, pulse_csv, read_ubfc, unpack

with warnings.catch_warnings():  # Starlette's notice that its test client will move from httpx to httpx2
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

USER = "0b6f3c5e-5a55-4c1e-9d7c-1f2a3b4c5d6e"
OTHER = "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
CLIENT = ClientInfo("testclient", "testclient")


@pytest.fixture
def repo(tmp_path: Path) -> SqliteRepository:
    return SqliteRepository(tmp_path / "meta.db", USER)


@pytest.fixture
def server(repo: SqliteRepository) -> SqliteServerRecords:
    return SqliteServerRecords(repo.db_path, USER)


@pytest.fixture
def sessions(tmp_path: Path) -> SqliteSessionStore:
    return SqliteSessionStore(tmp_path / "sessions.db", TokenCipher.for_process(), idle_timeout_s=3600,
                              lifetime_s=86400)


def cookie_for(sessions: SqliteSessionStore, user_id: str) -> str:
    """A signed-in browser's cookie, made the way the sign-in route makes it."""
    session = Session(user_id=user_id, email=f"{user_id[:4]}@lab.test", access_token="a", refresh_token="r",
                      expires_at=datetime.now(UTC) + timedelta(hours=1))
    _row, ticket = sessions.open(session, CLIENT)
    secret = sessions.claim(ticket)
    assert secret is not None
    return secret


def client_for(tickets: ExportTickets, store: ObjectStore, sessions: SqliteSessionStore | None) -> TestClient:
    app = Starlette(routes=export_routes(lambda: ExportBackends(tickets, store, sessions)))
    return TestClient(app)


def prepared_zip(store, repo, server, tickets, settings: Settings):
    a = add_recording(store, server, "alice.avi", subject="S1", truth=pulse_csv())
    b = add_recording(store, server, "bob.avi", subject="S2", truth=bids_truth())
    request = ExportRequest(Selection(record_ids=(a.id, b.id)), Layout.UBFC)
    prepared = prepare_export(store, repo, tickets, settings, request, trail=trail_of(repo))
    assert prepared.delivery is Delivery.ZIP
    return prepared, (a, b)


def test_the_route_streams_the_zip_for_its_users_live_ticket_once(store, repo, server, sessions, settings,
                                                                   tmp_path) -> None:
    tickets = ExportTickets()
    prepared, (a, _b) = prepared_zip(store, repo, server, tickets, settings)
    client = client_for(tickets, store, sessions)

    client.cookies.set(SESSION_COOKIE, cookie_for(sessions, OTHER))
    refused = client.get(prepared.download_url)
    assert (refused.status_code, refused.text) == (403, REFUSED)  # another user's browser: refused, not used up

    client.cookies.set(SESSION_COOKIE, cookie_for(sessions, USER))
    answer = client.get(prepared.download_url)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert prepared.file_name in answer.headers["content-disposition"]
    root = unpack(answer.content, tmp_path)
    sums = check_sums(root)
    assert sums["subject1/vid.avi"] == a.sha256
    assert [s.index for s in read_ubfc(root)] == ["subject1", "subject2"]
    assert load_ground_truth(root / "subject2" / "ground_truth.txt").format == "ubfc_dataset2"

    again = client.get(prepared.download_url)
    assert (again.status_code, again.text) == (403, REFUSED)  # one time


def test_the_route_refuses_a_missing_unknown_or_expired_ticket_and_a_signed_out_browser(
        store, repo, server, sessions, settings) -> None:
    now = [0.0]
    tickets = ExportTickets(ttl_s=60, clock=lambda: now[0])
    prepared, _ = prepared_zip(store, repo, server, tickets, settings)
    client = client_for(tickets, store, sessions)
    signed_out = client.get(prepared.download_url)
    assert (signed_out.status_code, signed_out.text) == (403, SIGN_IN_FIRST)
    client.cookies.set(SESSION_COOKIE, cookie_for(sessions, USER))
    for url in ("/pulsevault/export", "/pulsevault/export?ticket=", "/pulsevault/export?ticket=made-up",
                f"/pulsevault/export?record_id={prepared.plan.objects[0].key}"):
        assert client.get(url).status_code == 403, url
    now[0] = 61.0
    assert client.get(prepared.download_url).text == REFUSED  # expired


def test_the_route_names_a_recording_replaced_after_the_export_was_prepared(store, repo, server, settings,
                                                                            s3_client) -> None:
    tickets = ExportTickets()
    prepared, (a, _b) = prepared_zip(store, repo, server, tickets, settings)
    s3_client.put_object(Bucket=store.bucket, Key=a.s3_key, Body=b"z" * a.size_bytes)
    answer = client_for(tickets, store, None).get(prepared.download_url)  # no session store: the ticket decides
    assert answer.status_code == 409
    assert "alice.avi was replaced in storage since the export was prepared" in answer.text


def test_the_manifest_and_its_fetch_script_download_resume_and_check(store, repo, server, settings,
                                                                     tmp_path) -> None:
    a = add_recording(store, server, "alice.avi", subject="S1", truth=pulse_csv())
    b = add_recording(store, server, "bob.avi", subject="S2", truth=pulse_csv())
    tiny = replace(settings, export_zip_max_bytes=1)
    for record in (a, b):  # a manifest's links go out only for recordings shareable with collaborators
        repo.set_consent(record.id, Consent.SHAREABLE, None)
    request = ExportRequest(Selection(record_ids=(a.id, b.id)), Layout.PLAIN)
    prepared = prepare_export(store, repo, ExportTickets(), tiny, request, trail=trail_of(repo))
    assert prepared.delivery is Delivery.MANIFEST
    root = unpack(prepared.manifest, tmp_path)
    fetch = [sys.executable, str(root / "fetch.py")]

    done = subprocess.run(fetch, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "2 of 2 files fetched and checked" in done.stdout
    listed = sums_listed(root)
    rows = list(csv.DictReader(io.StringIO((root / "manifest.csv").read_text())))
    assert {row["path"] for row in rows} <= set(listed) and sums_hold(root, listed)

    # An interrupted download: half a file is left as .part; the next run fetches only the rest.
    first = root / rows[0]["path"]
    data = first.read_bytes()
    first.unlink()
    first.with_name(first.name + ".part").write_bytes(data[: len(data) // 2])
    # A file that went bad on disk is fetched anew.
    second = root / rows[1]["path"]
    second.write_bytes(b"\0" * second.stat().st_size)
    done = subprocess.run(fetch, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert first.read_bytes() == data and not first.with_name(first.name + ".part").exists()
    assert sums_hold(root, listed)

    # A link S3 refuses (here a broken signature; an expired one is refused the same way) says what to do.
    rows[0]["url"] = rows[0]["url"].replace("X-Amz-Signature=", "X-Amz-Signature=00")
    broken = tmp_path / "broken.csv"
    with broken.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow(rows[0])
    first.unlink()
    done = subprocess.run([*fetch, "--manifest", str(broken)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "prepare the export again in PulseVault" in done.stderr


def sums_listed(root: Path) -> dict[str, str]:
    """SHA256SUMS as path -> digest (a manifest export also holds manifest.csv, fetch.py and FETCH.md)."""
    return {path: digest for digest, path in (line.split("  ", 1) for line in (root / "SHA256SUMS").read_text()
                                                 .splitlines())}


def sums_hold(root: Path, listed: dict[str, str]) -> bool:
    """``sha256sum -c SHA256SUMS``: every listed file is there with its digest."""
    return all(hashlib.sha256((root / path).read_bytes()).hexdigest() == digest for path, digest in listed.items())


def test_the_manifest_zip_lists_every_recording_with_its_stored_checksum(store, repo, server, settings) -> None:
    a = add_recording(store, server, "alice.avi", subject="S1")
    repo.set_consent(a.id, Consent.SHAREABLE, None)
    prepared = prepare_export(store, repo, ExportTickets(), replace(settings, export_zip_max_bytes=1),
                              ExportRequest(Selection(record_ids=(a.id,)), Layout.BIDS), trail=trail_of(repo))
    with zipfile.ZipFile(io.BytesIO(prepared.manifest)) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read(f"{prepared.plan.root}/manifest.csv").decode())))
    assert [(r["path"], r["sha256"]) for r in rows] == [("sub-S1/sub-S1_video.avi", a.sha256)]


def test_a_recording_replaced_while_the_zip_streams_fails_the_download(store, repo, server, settings,
                                                                       s3_client) -> None:
    tickets = ExportTickets()
    prepared, (_a, b) = prepared_zip(store, repo, server, tickets, settings)
    chunks = iter(export_zip(store, prepared.plan))  # nothing is read from S3 before its turn
    next(chunks)  # the download has begun (the made files come first)
    s3_client.put_object(Bucket=store.bucket, Key=b.s3_key, Body=b"z" * b.size_bytes)
    with pytest.raises(StorageError):  # If-Match: the other bytes are never sent as the listed recording
        for _chunk in chunks:
            pass
