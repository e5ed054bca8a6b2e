"""Regenerating previews and thumbnails, without Ray: which derivatives a row needs (the upload pipeline's rule),
what is current (the objects' metadata), the links a worker gets (exactly the recording's keys, with the signed
headers), and the driver's handling of what a worker reports, with an in-process engine."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lib.audit import AuditAction, AuditFilter
from lib.errors import KeyOwnershipError, MetadataError
from lib.jobs import ItemStatus, JobKind, JobParameters, JobStatus
from lib.jobs.derive import (
    DERIVATION,
    DERIVED_FROM,
    DeriveOutcome,
    DeriveTask,
    derive_task,
    is_current,
    needs_preview,
    wanted_keys,
)
from lib.jobs.driver import GONE_WHILE_RUNNING, drive
from lib.jobs.model import MAX_ATTEMPTS, fingerprint
from lib.keys import record_keys_of
from lib.records import VideoProperties
from lib.repository import SqliteAuditLog, SqliteServerRecords
from lib.storage import ObjectStore
from tests.support.job_engine import HereEngine, add_record, owner_of
from tests.support.unit_world import BUCKET

PLAYABLE = VideoProperties(duration_s=1.0, fps=30.0, width=64, height=48, frame_count=30, codec="H.264",
                           lossless=False, browser_playable=True)


def test_a_preview_only_when_a_browser_cannot_play_the_original(server: SqliteServerRecords, store):
    record = server.get(add_record(server, store))  # an FFV1 AVI
    assert needs_preview(record) and wanted_keys(record)[1] == record_keys_of(record.s3_key).preview
    playable = replace(record, video=PLAYABLE, content_type="video/mp4")
    assert not needs_preview(playable) and wanted_keys(playable) == (record_keys_of(record.s3_key).thumbnail, None)
    assert needs_preview(replace(playable, content_type="video/x-msvideo"))  # H.264 in AVI: browsers do not


def test_regenerating_is_its_own_work():
    assert fingerprint(JobKind.REDERIVE, JobParameters("POS")) == fingerprint(JobKind.REDERIVE, JobParameters("CHROM"))
    assert fingerprint(JobKind.REDERIVE, JobParameters("POS")) != fingerprint(JobKind.REANALYSE, JobParameters("POS"))


def test_links_for_exactly_the_recordings_keys(server: SqliteServerRecords, store: ObjectStore, tmp_path: Path):
    record = server.get(add_record(server, store))
    task = derive_task(store, record, server.user_id, tmp_path / "w")
    keys = record_keys_of(record.s3_key)
    assert (task.thumbnail.key, task.preview and task.preview.key) == (keys.thumbnail, keys.preview)
    assert task.thumbnail.headers == {"Content-Type": "image/jpeg", f"x-amz-meta-{DERIVED_FROM}": task.source.etag,
                                      "x-amz-meta-derivation": DERIVATION}
    assert "X-Amz-Signature" in task.thumbnail.url and "secret" not in repr(task).lower()
    with pytest.raises(KeyOwnershipError):  # another user's space: nothing is signed
        derive_task(store, record, str(uuid.uuid4()), tmp_path / "w")


def test_current_means_made_by_this_derivation_from_the_current_original(server: SqliteServerRecords,
                                                                         store: ObjectStore):
    record = server.get(add_record(server, store))
    keys = record_keys_of(record.s3_key)
    etag = store.head(record.s3_key, owner=server.user_id).etag
    for key in (keys.thumbnail, keys.preview):
        store._client.put_object(Bucket=BUCKET, Key=key, Body=b"x", Metadata={DERIVED_FROM: etag,
                                                                              "derivation": DERIVATION})
    assert not is_current(store, record, server.user_id)  # the row does not point at them yet
    record = server.set_derivatives(record.id, keys.thumbnail, keys.preview)
    assert is_current(store, record, server.user_id)
    store._client.put_object(Bucket=BUCKET, Key=record.s3_key, Body=b"another original")
    assert not is_current(store, record, server.user_id)


def _worker_says(outcome: DeriveOutcome):
    return lambda task: outcome


def test_a_refused_file_is_not_retried_and_a_failure_is_bounded(server, store, tmp_path):
    owner = owner_of(store, server, tmp_path)
    refused = HereEngine(_worker_says(DeriveOutcome(message="Not a video.", refused=True)))
    job = owner.jobs.create(JobKind.REDERIVE, JobParameters(), (add_record(server, store),))
    [result] = drive(job.id, owner, refused).results.values()
    assert result.status is ItemStatus.FAILED and result.attempts == 1 and len(refused.submitted) == 1
    failing = HereEngine(_worker_says(DeriveOutcome(message="The bucket could not be reached.")))
    job = owner.jobs.create(JobKind.REDERIVE, JobParameters(), (add_record(server, store),))
    [result] = drive(job.id, owner, failing).results.values()
    assert result.status is ItemStatus.FAILED and result.attempts == MAX_ATTEMPTS


def test_what_a_worker_did_not_store_is_not_recorded(server, store, tmp_path):
    owner = owner_of(store, server, tmp_path)
    record_id = add_record(server, store)
    job = owner.jobs.create(JobKind.REDERIVE, JobParameters(), (record_id,))
    done = drive(job.id, owner, HereEngine(_worker_says(DeriveOutcome(thumbnail_bytes=10, preview_bytes=20))))
    [result] = done.results.values()
    assert done.status is JobStatus.FINISHED and result.status is ItemStatus.FAILED
    assert server.get(record_id).thumbnail_key is None


def test_a_recording_deleted_while_its_derivatives_were_made_keeps_nothing(server, store, tmp_path):
    owner = owner_of(store, server, tmp_path)
    record_id = add_record(server, store)
    job = owner.jobs.create(JobKind.REDERIVE, JobParameters(), (record_id,))

    def store_then_delete(task: DeriveTask) -> DeriveOutcome:
        for link in (task.thumbnail, task.preview):
            assert link is not None
            store._client.put_object(Bucket=BUCKET, Key=link.key, Body=b"made")
        server.delete(record_id)
        return DeriveOutcome(thumbnail_bytes=4, preview_bytes=4)

    done = drive(job.id, owner, HereEngine(store_then_delete))
    assert done.results[record_id].status is ItemStatus.DELETED
    assert done.results[record_id].message == GONE_WHILE_RUNNING
    prefix = record_keys_of(f"recordings/{server.user_id}/{datetime.now(UTC):%Y/%m}/{record_id}/original.avi").prefix
    left = store._client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    assert [o["Key"] for o in left if not o["Key"].endswith("original.avi")] == []


class BrokenAudit(SqliteAuditLog):
    def append(self, actor, event, *also) -> None:
        raise MetadataError("the audit table is locked")


def test_each_rederive_is_in_the_audit_trail_before_its_links_exist(server, store, tmp_path):
    owner = owner_of(store, server, tmp_path)
    record_id = add_record(server, store)
    engine = HereEngine(_worker_says(DeriveOutcome(message="stopped here")))
    job = owner.jobs.create(JobKind.REDERIVE, JobParameters(), (record_id,))
    drive(job.id, owner, engine)
    entries = owner.audit.entries(AuditFilter(study_id=None, actions=(AuditAction.REDERIVE,)))
    assert [(e.record_id, e.detail["job"]) for e in entries] == [(record_id, job.id)] * MAX_ATTEMPTS
    refused = replace(owner, audit=BrokenAudit(server.db_path, server.user_id))
    engine = HereEngine(_worker_says(DeriveOutcome(thumbnail_bytes=1)))
    job = owner.jobs.create(JobKind.REDERIVE, JobParameters(), (record_id,))
    [result] = drive(job.id, refused, engine).results.values()
    assert result.status is ItemStatus.FAILED and "audit trail could not be written" in result.message
    assert engine.submitted == []  # no entry, no links
