"""Moving a recording against a real S3 server (SeaweedFS over HTTP), on SQLite and on the Supabase stand-in
(sql/012_moves.sql's move_recording through PostgREST): every object lands under the new space's keys and the old
ones are gone (asked of the bucket itself); and a failure at each step (a copy halfway, a copy that does not match,
the database's switch, the audit trail) leaves the recording whole where it was with no copy left behind."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lib.audit import Actor, AuditAction, AuditFilter, AuditTrail
from lib.errors import AuditUnavailable, IntegrityError, MetadataUnavailable, StorageUnavailable
from lib.keys import Owner
from lib.moves import move_record
from lib.records import FileRecord
from lib.storage import ObjectInfo, ObjectStore
from tests.integration import test_erasure
from tests.integration.test_erasure import OBJECTS, stored
from tests.support.audit import trail_for
from tests.support.records import UserRows
from tests.support.s3 import RefusesDeletes

QUOTA = 10**9
rows = test_erasure.rows
"""One user's rows on SQLite and on the Supabase stand-in (tests/integration/test_erasure.py)."""


def in_bucket(store: ObjectStore, prefix: str) -> list[str]:
    """The bucket's own listing under ``prefix`` (boto3 straight to the server), as file names."""
    listed = store._client.list_objects_v2(Bucket=store.bucket, Prefix=prefix)
    return sorted(o["Key"].rsplit("/", 1)[-1] for o in listed.get("Contents", []))


def _move(store, rows: UserRows, record: FileRecord, study: str | None, trail: AuditTrail | None = None,
          server=None):
    return move_record(store, rows.repo, server or rows.server, record.id, study,
                       trail=trail or trail_for(rows), study_quota_bytes=QUOTA)


def _untouched(store: ObjectStore, rows: UserRows, record: FileRecord, study: str) -> None:
    """The recording is whole where it was and the target study holds nothing of it."""
    assert rows.repo.get(record.id) == record
    assert in_bucket(store, record.s3_key.rsplit("/", 1)[0] + "/") == sorted(OBJECTS)
    assert in_bucket(store, f"studies/{study}/") == []


def test_a_recording_moves_into_a_study_and_on_into_another_with_every_object(store, rows):
    first, second = (rows.repo.create_study(name).id for name in ("Sleep", "Exercise"))
    record = stored(store, rows)
    for study in (first, second):
        result = _move(store, rows, rows.repo.get(record.id), study)
        assert result.left_behind == ()
        assert in_bucket(store, f"studies/{study}/") == sorted(OBJECTS)
    assert in_bucket(store, f"recordings/{rows.repo.user_id}/") == [] and in_bucket(store, f"studies/{first}/") == []
    moved = rows.repo.get(record.id)
    assert (moved.study_id, moved.research, moved.analysis, moved.ground_truth_name) == (
        second, record.research, record.analysis, "s12_physio.tsv.gz")
    assert all(k.startswith(f"studies/{second}/") for k in (moved.s3_key, moved.thumbnail_key, moved.preview_key,
                                                           moved.ground_truth_key))
    log = trail_for(rows).log
    assert [e.detail["to"] for e in log.entries(AuditFilter(study_id=None, actions=(AuditAction.MOVE,)))] == [first]
    assert [(e.detail["from_name"], e.detail["to_name"]) for e in log.entries(
        AuditFilter(study_id=first, actions=(AuditAction.MOVE,)))] == [("Sleep", "Exercise"),
                                                                       ("personal space", "Sleep")]
    assert len(log.entries(AuditFilter(study_id=second, record_id=record.id))) == 1


class _FailsOnCopy:
    """The real store, except that its ``fail_at``-th copy fails (the copies before it are made)."""

    def __init__(self, store: ObjectStore, fail_at: int, *, mismatch: bool = False) -> None:
        self._store, self._fail_at, self._mismatch, self.copies = store, fail_at, mismatch, 0

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def copy(self, source: ObjectInfo, target: str, **owners: Owner) -> ObjectInfo:
        self.copies += 1
        made = self._store.copy(source, target, **owners)
        if self.copies < self._fail_at:
            return made
        if self._mismatch:  # the bucket's copy came out short
            return replace(made, size=made.size - 1)
        raise StorageUnavailable("The storage service is unavailable; try again shortly.")


@pytest.mark.parametrize("mismatch", [False, True])
def test_a_copy_failing_halfway_leaves_no_copy_and_the_recording_where_it_was(store, rows, mismatch):
    study = rows.repo.create_study("Sleep").id
    record = stored(store, rows)
    failing = _FailsOnCopy(store, fail_at=4, mismatch=mismatch)
    with pytest.raises(IntegrityError if mismatch else StorageUnavailable):
        _move(failing, rows, record, study)
    assert failing.copies == 4
    _untouched(store, rows, record, study)
    assert trail_for(rows).log.entries(AuditFilter(study_id=study)) == []


class _SwitchFails:
    """The server's records, except that the switch fails (the database is down)."""

    def __init__(self, server) -> None:
        self._server = server

    def __getattr__(self, name: str):
        return getattr(self._server, name)

    def move(self, *args, **kwargs) -> FileRecord:
        raise MetadataUnavailable("The metadata service (Supabase) is unavailable; try again shortly.")


def test_a_failed_switch_deletes_every_copy(store, rows):
    study = rows.repo.create_study("Sleep").id
    record = stored(store, rows)
    with pytest.raises(MetadataUnavailable):
        _move(store, rows, record, study, server=_SwitchFails(rows.server))
    _untouched(store, rows, record, study)


class _BrokenLog:
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id

    def append(self, actor, *events) -> None:
        raise MetadataUnavailable("The audit trail cannot be reached.")

    def entries(self, where):
        return []


def test_a_move_whose_entries_cannot_be_written_is_undone(store, rows):
    study = rows.repo.create_study("Sleep").id
    record = stored(store, rows)
    broken = AuditTrail(_BrokenLog(rows.repo.user_id), Actor(rows.repo.user_id, ""))
    with pytest.raises(AuditUnavailable):
        _move(store, rows, record, study, trail=broken)
    after = rows.repo.get(record.id)
    assert (after.study_id, after.s3_key, after.ground_truth_key) == (None, record.s3_key, record.ground_truth_key)
    assert in_bucket(store, record.s3_key.rsplit("/", 1)[0] + "/") == sorted(OBJECTS)
    assert in_bucket(store, f"studies/{study}/") == []


def test_old_objects_the_bucket_keeps_are_named_and_the_recording_is_whole_in_its_new_space(store, rows):
    study = rows.repo.create_study("Sleep").id
    record = stored(store, rows)
    keeps_old_thumbnail = RefusesDeletes(store, lambda k: k.startswith("recordings/") and k.endswith("thumb.jpg"))
    result = _move(keeps_old_thumbnail, rows, record, study)
    assert [k.rsplit("/", 1)[-1] for k in result.left_behind] == ["thumb.jpg"]
    assert "could not be removed from its previous place (thumb.jpg, under recordings/" in result.summary()
    assert in_bucket(store, f"studies/{study}/") == sorted(OBJECTS)
    assert rows.repo.get(record.id).study_id == study


def test_a_large_object_is_copied_part_by_part(store, rows):
    record = stored(store, rows)
    store._client.put_object(Bucket=store.bucket, Key=record.preview_key, Body=b"p" * (11 * 1024 * 1024))
    big = store.head(record.preview_key, owner=rows.repo.user_id)
    target = record.preview_key.replace("preview.mp4", "thumb.jpg")
    copied = store.copy(big, target, source_owner=rows.repo.user_id, target_owner=rows.repo.user_id,
                        part_size=5 * 1024 * 1024, single_limit=1)
    assert copied.size == big.size
    assert store._client.get_object(Bucket=store.bucket, Key=target)["Body"].read() == b"p" * (11 * 1024 * 1024)
