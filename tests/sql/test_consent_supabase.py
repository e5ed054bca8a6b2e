"""Consent and erasure through the cloud stores (SupabaseRepository with each user's JWT, SupabaseServerRecords
with the service role) on the Supabase stand-in over a real PostgreSQL with sql/ applied, the bucket a moto
double: the same behaviour as the demo's stores (tests/unit/test_consent.py), with set_consent(),
erase_recording() and row-level security deciding."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from moto import mock_aws

from lib.erasure import erase_past_retention, past_retention, withdraw
from lib.errors import AccessDenied, NotFound, ValidationError
from lib.keys import record_folder, record_keys
from lib.library import share_link
from lib.records import Consent, ErasureReason, ListQuery, NewRecord, ResearchFields
from lib.storage import ObjectStore
from lib.studies import Role
from lib.usage import UserRows
from tests.support.audit import trail_for
from tests.support.records import supabase_rows
from tests.support.unit_world import BUCKET, S3, SETTINGS

QUOTA = 10**12


@dataclass(frozen=True)
class Lab:
    people: dict[str, UserRows]
    study: str
    store: ObjectStore
    dsn: str

    def __getitem__(self, name: str) -> UserRows:
        return self.people[name]


@pytest.fixture
def lab(supabase_standin, pg_dsn) -> Iterator[Lab]:
    people = {name: supabase_rows(supabase_standin, name) for name in ("owner", "member", "viewer", "outsider")}
    study = people["owner"].repo.create_study("Sleep 2024").id
    people["owner"].repo.add_member(study, "member@lab.test", Role.MEMBER)
    people["owner"].repo.add_member(study, "viewer@lab.test", Role.VIEWER)
    with mock_aws():
        store = ObjectStore(S3, settings=SETTINGS)
        store._client.create_bucket(Bucket=BUCKET)
        yield Lab(people, study, store, pg_dsn)


def _upload(lab: Lab, person: UserRows, study: str | None) -> str:
    record_id = str(uuid.uuid4())
    keys = record_keys(person.repo.user_id, record_id, "mp4", datetime.now(UTC), study)
    person.server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=BUCKET, original_name="r.mp4",
                                    content_type="video/mp4", size_bytes=5, study_id=study,
                                    research=ResearchFields(subject_id="S12")), QUOTA)
    for key in (keys.original, keys.thumbnail, keys.preview):
        lab.store._client.put_object(Bucket=BUCKET, Key=key, Body=b"bytes")
    person.server.mark_ready(record_id, size_bytes=5, sha256=None, video=None, thumbnail_key=keys.thumbnail,
                             preview_key=keys.preview)
    return record_id


def _left(lab: Lab, prefix: str) -> int:
    return lab.store._client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("KeyCount", 0)


@pytest.mark.parametrize(("role", "outcome"), [("owner", None), ("member", None), ("viewer", AccessDenied),
                                               ("outsider", NotFound)])
def test_the_uploader_and_a_study_owner_set_consent(lab, role, outcome):
    record = _upload(lab, lab["member"], lab.study)
    if outcome is None:
        changed = lab[role].repo.set_consent(record, Consent.SHAREABLE, date(2024, 5, 2))
        assert (changed.consent, changed.consent_date) == (Consent.SHAREABLE, date(2024, 5, 2))
        assert lab["viewer"].repo.get(record).consent is Consent.SHAREABLE
        return
    with pytest.raises(outcome):
        lab[role].repo.set_consent(record, Consent.SHAREABLE, None)
    assert lab["owner"].repo.get(record).consent is Consent.INTERNAL


def test_share_links_follow_consent_in_the_cloud_too(lab):
    record, member = _upload(lab, lab["member"], lab.study), lab["member"]
    with pytest.raises(AccessDenied, match="internal use only"):
        share_link(lab.store, member.repo, record, 600, SETTINGS, trail=trail_for(member))
    lab["owner"].repo.set_consent(record, Consent.SHAREABLE, None)
    assert "X-Amz-Signature" in share_link(lab.store, member.repo, record, 600, SETTINGS, trail=trail_for(member)).url


@pytest.mark.parametrize("who", ["member", "owner"])
def test_withdrawal_erases_everything_and_the_owner_reads_the_tombstone(lab, who):
    record = _upload(lab, lab["member"], lab.study)
    prefix = record_folder(lab["member"].repo.get(record).s3_key)
    assert _left(lab, prefix) == 3
    stone = withdraw(lab.store, lab[who].repo, lab[who].server, record, trail=trail_for(lab[who]))
    assert _left(lab, prefix) == 0
    with pytest.raises(NotFound):
        lab["owner"].repo.get(record)
    assert (stone.id, stone.study_id, stone.subject_id, stone.reason) == (record, lab.study, "S12",
                                                                         ErasureReason.WITHDRAWN)
    assert lab["owner"].repo.tombstones(lab.study) == [stone]
    with pytest.raises(AccessDenied):
        lab["member"].repo.tombstones(lab.study)
    with pytest.raises(NotFound):
        lab["outsider"].repo.tombstones(lab.study)


def test_a_viewer_cannot_withdraw_and_nothing_changes(lab):
    record = _upload(lab, lab["member"], lab.study)
    with pytest.raises(AccessDenied):
        withdraw(lab.store, lab["viewer"].repo, lab["viewer"].server, record, trail=trail_for(lab["viewer"]))
    assert lab["owner"].repo.get(record).consent is Consent.INTERNAL


def test_a_personal_withdrawal_leaves_its_owner_a_tombstone(lab):
    record = _upload(lab, lab["member"], None)
    stone = withdraw(lab.store, lab["member"].repo, lab["member"].server, record, trail=trail_for(lab["member"]))
    assert lab["member"].repo.tombstones(None) == [stone]
    assert lab["owner"].repo.tombstones(None) == []


def test_a_withdrawn_row_refuses_consent_changes_in_words(lab):
    record = _upload(lab, lab["member"], None)
    lab["member"].server.mark_withdrawn(record, "testing")
    with pytest.raises(ValidationError, match="withdrawn"):
        lab["member"].repo.set_consent(record, Consent.SHAREABLE, None)


def test_the_retention_sweep_erases_what_is_past_the_period(lab):
    old, recent = _upload(lab, lab["member"], lab.study), _upload(lab, lab["member"], lab.study)
    with psycopg.connect(lab.dsn, autocommit=True) as conn:  # past the trigger that keeps created_at
        conn.execute("set session_replication_role = replica")
        conn.execute("update public.user_files set created_at = %s where id = %s",
                     (datetime.now(UTC) - timedelta(days=40), old))
    owner = lab["owner"]
    assert owner.repo.set_retention(lab.study, 30).retention_days == 30
    with pytest.raises(AccessDenied):
        lab["member"].repo.set_retention(lab.study, 1)
    assert [r.id for r in past_retention(owner.repo, lab.study)] == [old]
    report = erase_past_retention(lab.store, owner.repo, owner.server, lab.study, trail=trail_for(owner))
    assert report.ok and [t.id for t in report.erased] == [old]
    assert past_retention(owner.repo, lab.study) == []
    assert [r.id for r in owner.repo.list(ListQuery(study_id=lab.study)).records] == [recent]
    assert [t.reason for t in owner.repo.tombstones(lab.study)] == [ErasureReason.RETENTION]
