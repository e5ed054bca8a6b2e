"""An action whose audit entry cannot be written does not happen (issue 15), against a real S3 server: the
recording's objects stay in the bucket, no link is handed out, an edit is undone. The audit store is made to
refuse writes the way a database does (a trigger aborting every insert), not by a stand-in object."""

from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import requests

from lib import library, pipeline
from lib.audit import AuditAction, AuditFilter
from lib.errors import AuditUnavailable
from lib.keys import record_keys
from lib.records import Consent, NewRecord, ResearchFields, Status
from lib.repository import SqliteAuditLog, SqliteRepository, SqliteServerRecords
from lib.settings import S3Settings, Settings
from lib.storage import ObjectStore
from tests.support import videos
from tests.support.audit import trail_of
from tests.support.records import backends_of

USER = "6a1f0c3e-2b4d-4e5f-8a9b-0c1d2e3f4a5b"
BODY = b"RIFF" + os.urandom(2048)


@pytest.fixture
def store(s3_settings: S3Settings) -> ObjectStore:
    return ObjectStore(s3_settings, settings=Settings(mode="cloud", s3=s3_settings))


@pytest.fixture
def stored(store: ObjectStore, s3_client, s3_settings: S3Settings, tmp_path) -> tuple[SqliteRepository, str, list[str]]:
    """A ready recording with its original and thumbnail in the bucket: (repository, record id, keys)."""
    repo, server = SqliteRepository(tmp_path / "meta.db", USER), SqliteServerRecords(tmp_path / "meta.db", USER)
    record_id = str(uuid.uuid4())
    keys = record_keys(USER, record_id, "avi", datetime.now(UTC))
    for key in (keys.original, keys.thumbnail):
        s3_client.put_object(Bucket=s3_settings.bucket, Key=key, Body=BODY)
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=store.bucket, original_name="s.avi",
                             content_type="video/x-msvideo", size_bytes=len(BODY),
                             research=ResearchFields(subject_id="12")), 10**9)
    server.mark_ready(record_id, size_bytes=len(BODY), sha256=None, video=None, thumbnail_key=keys.thumbnail,
                      preview_key=None)
    return repo, record_id, [keys.original, keys.thumbnail]


def refuse_audit_writes(db_path: str) -> None:
    """The audit table refuses every new entry from now on (as a full disk or a read-only database would)."""
    SqliteAuditLog(db_path, USER)  # the table exists
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("create trigger audit_log_refuse before insert on audit_log "
                     "begin select raise(abort, 'the audit database refuses writes'); end")
        conn.commit()
    finally:
        conn.close()


def in_bucket(store: ObjectStore, keys: list[str]) -> set[str]:
    return {info.key for info in store.iter_all_objects()} & set(keys)


def test_a_deletion_whose_entry_cannot_be_written_leaves_everything_in_place(store, stored):
    repo, record_id, keys = stored
    refuse_audit_writes(repo.db_path)
    report = library.delete_records(store, repo, SqliteServerRecords(repo.db_path, USER), [record_id],
                                    trail=trail_of(repo))
    assert not report.ok and "audit trail" in report.failed[0].reason
    assert in_bucket(store, keys) == set(keys)
    assert repo.get(record_id).status is Status.READY  # not even marked as being deleted


def test_no_link_is_handed_out_and_no_edit_kept_without_an_entry(store, stored):
    repo, record_id, _keys = stored
    repo.set_consent(record_id, Consent.SHAREABLE, None)  # else the share link is refused for its consent
    trail = trail_of(repo)
    link = library.download_url(store, repo, record_id, trail=trail)  # written: the link works
    assert requests.get(link.url, timeout=30).content == BODY
    refuse_audit_writes(repo.db_path)
    for issue in (lambda: library.playback_url(store, repo, record_id, trail=trail),
                  lambda: library.download_url(store, repo, record_id, trail=trail),
                  lambda: library.share_link(store, repo, record_id, 600, Settings(mode="cloud"), trail=trail)):
        with pytest.raises(AuditUnavailable):
            issue()
    with pytest.raises(AuditUnavailable):
        library.edit_research(repo, record_id, ResearchFields(subject_id="13"), trail=trail)
    assert repo.get(record_id).research.subject_id == "12"


def test_an_upload_is_recorded_and_one_that_cannot_be_is_not_stored(settings, tmp_path):
    store = ObjectStore.from_settings(settings)
    repo = SqliteRepository(tmp_path / "meta.db", USER)
    backends = replace(backends_of(settings, store, repo), trail=trail_of(repo, "uploader@lab.test"))
    clip = videos.write_opencv(tmp_path / "clip.avi", "MJPG", frames=23, size=(62, 46))
    stored = pipeline.process_upload(clip, "rest 12.avi", ResearchFields(subject_id="12"), backends, analyse=False)
    [entry] = SqliteAuditLog(repo.db_path, USER).entries(AuditFilter(study_id=None))
    assert (entry.action, entry.record_id, entry.subject_id, entry.actor_email) == (
        AuditAction.UPLOAD, stored.id, "12", "uploader@lab.test")

    refuse_audit_writes(repo.db_path)
    with pytest.raises(AuditUnavailable, match=r"rest 13\.avi was not stored"):
        pipeline.process_upload(clip, "rest 13.avi", ResearchFields(), backends, analyse=False,
                                allow_duplicate=True)
    failed = next(r for r in repo.iter_all() if r.original_name == "rest 13.avi")
    assert failed.status is Status.FAILED
    assert not [o for o in store.iter_all_objects() if failed.id in o.key]  # nothing of it left in the bucket
