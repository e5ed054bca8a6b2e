"""Withdrawal against a real S3 server (SeaweedFS over HTTP), on SQLite and on the Supabase stand-in: every
object under the record's prefix is gone (asked of the bucket itself, not of the app), the row is gone and its
tombstone kept; when the bucket keeps something, the erasure names it, leaves the row withdrawn, and a second
run finishes it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lib.erasure import ErasureIncomplete, withdraw
from lib.errors import AccessDenied, NotFound
from lib.keys import record_folder, record_keys
from lib.library import share_link
from lib.records import Consent, ErasureReason, FileRecord, GroundTruthFile, NewRecord, ResearchFields
from lib.settings import Settings
from lib.storage import ObjectStore
from tests.support.audit import trail_for
from tests.support.records import UserRows, sqlite_rows, supabase_rows
from tests.support.s3 import RefusesDeletes

OBJECTS = ("original.avi", "thumb.jpg", "preview.mp4", "ground_truth_physio.tsv.gz", "ground_truth_physio.json",
           "leftover.part")
"""Everything a recording's folder can hold, and a broken upload's leftover the row names nowhere."""


@pytest.fixture(params=["sqlite", "supabase"])
def rows(request: pytest.FixtureRequest, tmp_path: Path) -> UserRows:
    if request.param == "sqlite":
        return sqlite_rows(tmp_path / "demo.db")
    return supabase_rows(request.getfixturevalue("supabase_standin"))


def stored(store: ObjectStore, rows: UserRows) -> FileRecord:
    record_id = str(uuid.uuid4())
    keys = record_keys(rows.server.user_id, record_id, "avi", datetime.now(UTC))
    rows.server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=store.bucket,
                                  original_name="subject 12.avi", content_type="video/x-msvideo", size_bytes=8,
                                  research=ResearchFields(subject_id="S12")), 10**9)
    for name in OBJECTS:
        store._client.put_object(Bucket=store.bucket, Key=f"{keys.prefix}{name}", Body=b"8 bytes.")
    rows.server.mark_ready(record_id, size_bytes=8, sha256=None, video=None, thumbnail_key=keys.thumbnail,
                           preview_key=keys.preview, analysis={"hr_bpm": 72.0})
    truth = GroundTruthFile(f"{keys.prefix}ground_truth_physio.tsv.gz", "s12_physio.tsv.gz", 16)
    return rows.server.set_ground_truth(record_id, truth)


def in_bucket(store: ObjectStore, record: FileRecord) -> list[str]:
    """The bucket's own listing under the record's prefix (boto3 straight to the server)."""
    listed = store._client.list_objects_v2(Bucket=store.bucket, Prefix=record_folder(record.s3_key))
    return sorted(o["Key"].rsplit("/", 1)[-1] for o in listed.get("Contents", []))


def test_withdrawal_leaves_nothing_under_the_prefix(store: ObjectStore, rows: UserRows) -> None:
    record = stored(store, rows)
    assert in_bucket(store, record) == sorted(OBJECTS)
    stone = withdraw(store, rows.repo, rows.server, record.id, trail=trail_for(rows))
    assert in_bucket(store, record) == []
    with pytest.raises(NotFound):
        rows.repo.get(record.id)
    assert (stone.id, stone.subject_id, stone.reason) == (record.id, "S12", ErasureReason.WITHDRAWN)
    assert rows.repo.tombstones(None) == [stone]


def test_what_the_bucket_keeps_is_named_and_a_second_run_finishes(store: ObjectStore, rows: UserRows,
                                                                  settings: Settings) -> None:
    record = stored(store, rows)
    rows.repo.set_consent(record.id, Consent.SHAREABLE, None)
    keeps_thumbnail = RefusesDeletes(store, lambda k: k.endswith("thumb.jpg"), silent=True)
    with pytest.raises(ErasureIncomplete, match=r"thumb\.jpg") as caught:
        # The delete reported no error at all:
        withdraw(keeps_thumbnail, rows.repo, rows.server, record.id, trail=trail_for(rows))
    assert caught.value.left == (record.thumbnail_key,) and in_bucket(store, record) == ["thumb.jpg"]
    held = rows.repo.get(record.id)
    assert held.consent is Consent.WITHDRAWN and rows.repo.tombstones(None) == []
    with pytest.raises(AccessDenied, match="withdrawn"):
        share_link(store, rows.repo, record.id, 600, settings, trail=trail_for(rows))
    withdraw(store, rows.repo, rows.server, record.id, trail=trail_for(rows))
    assert in_bucket(store, record) == [] and [t.id for t in rows.repo.tombstones(None)] == [record.id]
