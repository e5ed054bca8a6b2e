"""lib/library.py against SeaweedFS over real HTTP: the links a browser gets work, Range
requests seek, downloads carry the original name, and another user's records get no link."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from lib import pipeline
from lib.errors import KeyOwnershipError, NotFound
from lib.keys import record_keys
from lib.library import (
    delete_records,
    download_url,
    playback_url,
    reanalyse,
    share_link,
    thumbnail_url,
)
from lib.pipeline import Backends
from lib.records import FileRecord, NewRecord, ResearchFields
from lib.repository import SqliteRepository
from lib.settings import MIB, Settings
from lib.storage import ObjectStore, content_disposition
from tests.support import videos

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
    return pipeline.process_upload(clip, NAME, ResearchFields(subject_id="S1"), Backends(settings, store, repo),
                                   analyse=False)


def body_of(s3_client, key: str) -> bytes:
    return s3_client.get_object(Bucket="pulsevault-test", Key=key)["Body"].read()


def test_playback_link_returns_the_preview_and_seeks_with_range(stored, store, s3_client) -> None:
    assert stored.preview_key is not None
    expected = body_of(s3_client, stored.preview_key)
    url = playback_url(store, stored, owner=USER).url
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200 and whole.content == expected
    assert whole.headers["Content-Type"] == "video/mp4"
    end = min(len(expected), 2_000) - 1
    part = requests.get(url, headers={"Range": f"bytes=100-{end}"}, timeout=30)
    assert part.status_code == 206
    assert part.content == expected[100:end + 1]
    assert part.headers["Content-Range"] == f"bytes 100-{end}/{len(expected)}"


def test_thumbnail_link_is_the_jpeg(stored, store, s3_client) -> None:
    link = thumbnail_url(store, stored, owner=USER)
    assert link is not None
    response = requests.get(link.url, timeout=30)
    assert response.content == body_of(s3_client, stored.thumbnail_key)
    assert response.content[:2] == b"\xff\xd8"


def test_download_is_the_original_as_an_attachment_with_its_name(stored, store, clip) -> None:
    response = requests.get(download_url(store, stored, owner=USER).url, timeout=30)
    assert response.status_code == 200 and response.content == clip.read_bytes()
    disposition = response.headers["Content-Disposition"]
    assert disposition == content_disposition(NAME, inline=False)
    assert disposition.startswith('attachment; filename="Sitzung 3 Muller.avi"')


@pytest.mark.parametrize(("asked", "given"), [(5, 60), (3_600, 3_600), (10**6, 86_400), (None, 600)])
def test_share_link_expiry_is_clamped_and_the_link_works(stored, store, settings, clip, asked, given) -> None:
    link = share_link(store, stored, asked, settings, owner=USER)
    assert parse_qs(urlsplit(link.url).query)["X-Amz-Expires"] == [str(given)]
    assert requests.get(link.url, timeout=30).content == clip.read_bytes()


def test_cross_user_attempts_are_refused_and_nothing_is_signed(stored, store, settings, tmp_path,
                                                               monkeypatch) -> None:
    signed: list[str] = []
    real = store._client.generate_presigned_url
    monkeypatch.setattr(store._client, "generate_presigned_url",
                        lambda *a, **k: signed.append(a[0]) or real(*a, **k))
    intruder = SqliteRepository(tmp_path / "demo.db", OTHER)
    with pytest.raises(NotFound):
        intruder.get(stored.id)  # the only way the page gets a record
    for sign in (playback_url, download_url, thumbnail_url):
        with pytest.raises(KeyOwnershipError):  # a record of USER's, presented by OTHER
            sign(store, _as(stored, OTHER), owner=OTHER)
    with pytest.raises(KeyOwnershipError):
        share_link(store, _as(stored, OTHER), 60, settings, owner=OTHER)
    report = delete_records(store, intruder, [stored.id])
    assert not report.deleted and "does not exist" in report.failed[0].reason
    with pytest.raises(NotFound):
        reanalyse(store, intruder, stored.id)
    assert signed == []
    assert store.head(stored.s3_key, owner=USER).size == stored.size_bytes  # untouched


def _as(record: FileRecord, user_id: str) -> FileRecord:
    """The record as a crafted request would claim it: owned by ``user_id``, keys unchanged."""
    return replace(record, user_id=user_id)


def test_delete_removes_objects_and_row(stored, store, repo, s3_client) -> None:
    report = delete_records(store, repo, [stored.id])
    assert report.ok
    assert s3_client.list_objects_v2(Bucket="pulsevault-test").get("KeyCount", 0) == 0
    with pytest.raises(NotFound):
        repo.get(stored.id)


def test_reanalyse_streams_the_original_and_saves_the_summary(stored, store, repo) -> None:
    assert stored.analysis is None
    stages: list[tuple[str, float]] = []
    updated = reanalyse(store, repo, stored.id, progress=lambda s, f: stages.append((s, f)))
    assert updated.analysis is not None and updated.analysis["frames_analysed"] == 30
    assert repo.get(stored.id).analysis == updated.analysis
    assert ("download", 1.0) in stages and stages[-1] == ("analyse", 1.0)


def test_original_without_preview_plays_and_seeks(store, repo, s3_client) -> None:
    """Playback of an original without a preview returns exactly the stored bytes, with Range."""
    record_id = str(uuid.uuid4())
    keys = record_keys(USER, record_id, "mp4", datetime.now(UTC))
    body = os.urandom(50_000)
    s3_client.put_object(Bucket="pulsevault-test", Key=keys.original, Body=body)
    record = repo.create_pending(NewRecord(id=record_id, s3_key=keys.original, bucket="pulsevault-test",
                                           original_name="x.mp4", content_type="video/mp4", size_bytes=len(body)))
    response = requests.get(playback_url(store, record, owner=USER).url, headers={"Range": "bytes=0-9"}, timeout=30)
    assert response.status_code == 206 and response.content == body[:10]
