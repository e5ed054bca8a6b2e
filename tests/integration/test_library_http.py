"""lib/library.py against SeaweedFS over real HTTP: the links a browser gets work, Range
requests seek, downloads carry the original name, the bucket answers with the type of the key (never a
row's), and another user's records get no link."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from lib import pipeline
from lib.errors import NotFound
from lib.keys import record_keys
from lib.library import (
    delete_records,
    download_url,
    playback_url,
    reanalyse,
    share_link,
    thumbnail_urls,
)
from lib.records import FileRecord, NewRecord, ResearchFields
from lib.repository import SqliteRepository
from lib.settings import MIB, Settings
from lib.storage import ObjectStore, content_disposition
from tests.support import videos
from tests.support.records import backends_of, server_of

USER = "0b6f3c5e-5a55-4c1e-9d7c-1f2a3b4c5d6e"
OTHER = "9f1e2d3c-4b5a-4968-8776-655443322110"
NAME = "Sitzung 3 – Müller.avi"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = videos.opencv_video(tmp_path_factory.mktemp("clip"), "mjpg", frames=30)
    assert path is not None
    return path


@pytest.fixture
def settings(s3_settings) -> Settings:
    return Settings(mode="cloud", s3=s3_settings, max_upload_bytes=50 * MIB, presign_expiry_s=600)


@pytest.fixture
def store(settings: Settings) -> ObjectStore:
    return ObjectStore.from_settings(settings)


@pytest.fixture
def repo(tmp_path: Path) -> SqliteRepository:
    return SqliteRepository(tmp_path / "demo.db", USER)


@pytest.fixture
def stored(clip: Path, settings: Settings, store: ObjectStore, repo: SqliteRepository) -> FileRecord:
    """The clip uploaded through the real pipeline (MJPG: it gets an H.264 preview)."""
    return pipeline.process_upload(clip, NAME, ResearchFields(subject_id="S1"), backends_of(settings, store, repo),
                                   analyse=False)


def body_of(s3_client, key: str) -> bytes:
    return s3_client.get_object(Bucket="pulsevault-test", Key=key)["Body"].read()


def test_playback_link_returns_the_preview_and_seeks_with_range(stored, store, repo, s3_client) -> None:
    assert stored.preview_key is not None
    expected = body_of(s3_client, stored.preview_key)
    url = playback_url(store, repo, stored.id).url
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200 and whole.content == expected
    assert whole.headers["Content-Type"] == "video/mp4"
    end = min(len(expected), 2_000) - 1
    part = requests.get(url, headers={"Range": f"bytes=100-{end}"}, timeout=30)
    assert part.status_code == 206
    assert part.content == expected[100:end + 1]
    assert part.headers["Content-Range"] == f"bytes 100-{end}/{len(expected)}"


def test_thumbnail_link_is_the_jpeg(stored, store, repo, s3_client) -> None:
    url = thumbnail_urls(store, repo, [stored.id])[stored.id]
    assert url is not None
    response = requests.get(url, timeout=30)
    assert response.content == body_of(s3_client, stored.thumbnail_key)
    assert response.content[:2] == b"\xff\xd8"


def test_download_is_the_original_as_an_attachment_with_its_name(stored, store, repo, clip) -> None:
    response = requests.get(download_url(store, repo, stored.id).url, timeout=30)
    assert response.status_code == 200 and response.content == clip.read_bytes()
    disposition = response.headers["Content-Disposition"]
    assert disposition == content_disposition(NAME, inline=False)
    assert disposition.startswith('attachment; filename="Sitzung 3 Muller.avi"')


@pytest.mark.parametrize(("asked", "given"), [(5, 60), (3_600, 3_600), (10**6, 86_400), (None, 600)])
def test_share_link_expiry_is_clamped_and_the_link_works(stored, store, repo, settings, clip, asked,
                                                         given) -> None:
    link = share_link(store, repo, stored.id, asked, settings)
    assert parse_qs(urlsplit(link.url).query)["X-Amz-Expires"] == [str(given)]
    assert requests.get(link.url, timeout=30).content == clip.read_bytes()


def test_cross_user_attempts_are_refused_and_nothing_is_signed(stored, store, settings, tmp_path,
                                                               monkeypatch) -> None:
    signed: list[str] = []
    real = store._client.generate_presigned_url
    monkeypatch.setattr(store._client, "generate_presigned_url",
                        lambda *a, **k: signed.append(a[0]) or real(*a, **k))
    intruder = SqliteRepository(tmp_path / "demo.db", OTHER)
    for sign in (playback_url, download_url):  # USER's record id, through OTHER's session
        with pytest.raises(NotFound):
            sign(store, intruder, stored.id)
    with pytest.raises(NotFound):
        share_link(store, intruder, stored.id, 60, settings)
    assert thumbnail_urls(store, intruder, [stored.id]) == {stored.id: None}
    report = delete_records(store, intruder, server_of(intruder), [stored.id])
    assert not report.deleted and "does not exist" in report.failed[0].reason
    with pytest.raises(NotFound):
        reanalyse(store, intruder, server_of(intruder), stored.id)
    assert signed == []
    assert store.head(stored.s3_key, owner=USER).size == stored.size_bytes  # untouched


def test_a_polyglot_marked_as_html_is_still_served_as_video(store, repo, s3_client) -> None:
    """Issue 14, attack 2 over HTTP: an MP4 whose row says text/html (written past the app) is answered
    with the extension's type; the bucket never serves it as a page."""
    record_id = str(uuid.uuid4())
    keys = record_keys(USER, record_id, "mp4", datetime.now(UTC))
    body = b"\x00\x00\x00\x18ftypmp42" + b"<html><script>alert(document.domain)</script></html>"
    s3_client.put_object(Bucket="pulsevault-test", Key=keys.original, Body=body, ContentType="text/html")
    server = server_of(repo)
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket="pulsevault-test", original_name="p.mp4",
                             content_type="text/html", size_bytes=len(body)), 10**9)
    server.mark_ready(record_id, size_bytes=len(body), sha256=None, video=None, thumbnail_key=None,
                      preview_key=None)
    for link in (playback_url(store, repo, record_id), download_url(store, repo, record_id)):
        response = requests.get(link.url, timeout=30)
        assert response.status_code == 200 and response.headers["Content-Type"] == "video/mp4"


def test_delete_removes_objects_and_row(stored, store, repo, s3_client) -> None:
    report = delete_records(store, repo, server_of(repo), [stored.id])
    assert report.ok
    assert s3_client.list_objects_v2(Bucket="pulsevault-test").get("KeyCount", 0) == 0
    with pytest.raises(NotFound):
        repo.get(stored.id)


def test_reanalyse_streams_the_original_and_saves_the_summary(stored, store, repo) -> None:
    assert stored.analysis is None
    stages: list[tuple[str, float]] = []
    updated = reanalyse(store, repo, server_of(repo), stored.id, progress=lambda s, f: stages.append((s, f)))
    assert updated.analysis is not None and updated.analysis["frames_analysed"] == 30
    assert repo.get(stored.id).analysis == updated.analysis
    assert ("download", 1.0) in stages and stages[-1] == ("analyse", 1.0)


def test_original_without_preview_plays_and_seeks(store, repo, s3_client) -> None:
    """Playback of an original without a preview returns exactly the stored bytes, with Range."""
    record_id = str(uuid.uuid4())
    keys = record_keys(USER, record_id, "mp4", datetime.now(UTC))
    body = os.urandom(50_000)
    s3_client.put_object(Bucket="pulsevault-test", Key=keys.original, Body=body)
    server_of(repo).reserve(NewRecord(id=record_id, s3_key=keys.original, bucket="pulsevault-test",
                                      original_name="x.mp4", content_type="video/mp4", size_bytes=len(body)), 10**9)
    response = requests.get(playback_url(store, repo, record_id).url, headers={"Range": "bytes=0-9"}, timeout=30)
    assert response.status_code == 206 and response.content == body[:10]
