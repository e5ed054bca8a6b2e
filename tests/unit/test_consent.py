"""Consent and retention in demo mode (moto in-process, the demo's SQLite stores): who sets consent, share links
refused unless it allows sharing, withdrawal erasing everything under the record's prefix with a tombstone (and
a partial failure that says what is left and finishes on retry), and a study's retention sweep.
tests/sql/test_consent_rls.py proves the same rules in PostgreSQL."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from lib.consent import check_shareable
from lib.erasure import ErasureIncomplete, erase_past_retention, past_retention, withdraw
from lib.errors import AccessDenied, MetadataError, NotFound, ValidationError
from lib.keys import record_folder, record_keys
from lib.library import delete_records, share_link
from lib.records import Consent, ErasureReason, FileRecord, GroundTruthFile, NewRecord, ResearchFields
from lib.repository import SqliteServerRecords
from lib.storage import ObjectStore
from lib.studies import Role
from tests.support.audit import trail_for, trail_of
from tests.support.people import Person, demo_person
from tests.support.s3 import RefusesDeletes
from tests.support.unit_world import BUCKET, SETTINGS

QUOTA = 10**12


@dataclass(frozen=True)
class Lab:
    db: Path
    store: ObjectStore
    people: dict[str, Person]
    study: str

    def __getitem__(self, name: str) -> Person:
        return self.people[name]


@pytest.fixture
def lab(tmp_path: Path, store: ObjectStore) -> Lab:
    db = tmp_path / "demo.sqlite3"
    people = {name: demo_person(db, f"{name}@lab.test") for name in ("owner", "member", "other", "viewer", "outsider")}
    study = people["owner"].repo.create_study("Sleep 2024").id
    for name, role in (("member", Role.MEMBER), ("other", Role.MEMBER), ("viewer", Role.VIEWER)):
        people["owner"].repo.add_member(study, f"{name}@lab.test", role)
    return Lab(db, store, people, study)


def upload(lab: Lab, person: Person, study: str | None, *, subject: str = "S12") -> FileRecord:
    """A ready recording with every object a recording can have in the bucket (a BIDS sidecar too)."""
    record_id = str(uuid.uuid4())
    keys = record_keys(person.id, record_id, "mp4", datetime.now(UTC), study)
    person.server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=BUCKET, original_name="r.mp4",
                                    content_type="video/mp4", size_bytes=5, study_id=study,
                                    research=ResearchFields(subject_id=subject)), QUOTA)
    truth = f"{keys.prefix}ground_truth_physio.tsv.gz"
    for key in (keys.original, keys.thumbnail, keys.preview, truth, f"{keys.prefix}ground_truth_physio.json"):
        lab.store._client.put_object(Bucket=BUCKET, Key=key, Body=b"bytes")
    person.server.mark_ready(record_id, size_bytes=5, sha256="ab" * 32, video=None, thumbnail_key=keys.thumbnail,
                             preview_key=keys.preview, analysis={"hr_bpm": 61.0})
    return person.server.set_ground_truth(record_id, GroundTruthFile(truth, "truth.tsv.gz", 5))


def left_under(store: ObjectStore, record: FileRecord) -> list[str]:
    """What the bucket itself lists under the record's prefix (asked directly, past the store's own checks)."""
    listed = store._client.list_objects_v2(Bucket=BUCKET, Prefix=record_folder(record.s3_key))
    return [o["Key"] for o in listed.get("Contents", [])]


# --- consent and share links --------------------------------------------------------------------------


def test_a_recording_starts_internal_and_is_not_shared_until_made_shareable(lab):
    record = upload(lab, lab["member"], None)
    repo = lab["member"].repo
    assert record.consent is Consent.INTERNAL and record.consent_date is None
    with pytest.raises(AccessDenied, match="internal use only"):
        share_link(lab.store, repo, record.id, 600, SETTINGS, trail=trail_of(repo))
    changed = repo.set_consent(record.id, Consent.SHAREABLE, date(2024, 5, 2))
    assert (changed.consent, changed.consent_date) == (Consent.SHAREABLE, date(2024, 5, 2))
    assert repo.get(record.id).consent_date == date(2024, 5, 2)
    assert share_link(lab.store, repo, record.id, 600, SETTINGS, trail=trail_of(repo)).url.startswith("http")
    repo.set_consent(record.id, Consent.INTERNAL, None)
    with pytest.raises(AccessDenied, match="internal use only"):
        share_link(lab.store, repo, record.id, 600, SETTINGS, trail=trail_of(repo))


@pytest.mark.parametrize(("who", "outcome"), [("member", None), ("owner", None), ("other", AccessDenied),
                                              ("viewer", AccessDenied), ("outsider", NotFound)])
def test_the_uploader_and_a_study_owner_set_consent_nobody_else(lab, who, outcome):
    record = upload(lab, lab["member"], lab.study)
    if outcome is None:
        assert lab[who].repo.set_consent(record.id, Consent.SHAREABLE, None).consent is Consent.SHAREABLE
        return
    with pytest.raises(outcome):
        lab[who].repo.set_consent(record.id, Consent.SHAREABLE, None)
    assert lab["member"].repo.get(record.id).consent is Consent.INTERNAL


def test_a_removed_uploader_no_longer_sets_consent(lab):
    record = upload(lab, lab["member"], lab.study)
    lab["owner"].repo.remove_member(lab.study, lab["member"].id)
    with pytest.raises(NotFound):
        lab["member"].repo.set_consent(record.id, Consent.SHAREABLE, None)


def test_consent_is_never_set_to_withdrawn_directly(lab):
    record = upload(lab, lab["member"], None)
    with pytest.raises(ValidationError, match="Withdraw"):
        lab["member"].repo.set_consent(record.id, Consent.WITHDRAWN, None)


def test_a_withdrawn_row_stays_withdrawn_even_for_the_server(lab):
    record = upload(lab, lab["member"], None)
    lab["member"].server.mark_withdrawn(record.id, "test")
    with pytest.raises(ValidationError, match="withdrawn"):
        lab["member"].repo.set_consent(record.id, Consent.SHAREABLE, None)
    conn = sqlite3.connect(lab.db)
    with pytest.raises(sqlite3.IntegrityError, match="withdrawal_final"):
        conn.execute("update user_files set consent = 'internal' where id = ?", (record.id,))
    conn.close()


# --- withdrawal -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["member", "owner"])
def test_withdrawal_erases_every_object_and_the_row_and_keeps_a_tombstone(lab, who):
    record = upload(lab, lab["member"], lab.study)
    assert len(left_under(lab.store, record)) == 5
    stone = withdraw(lab.store, lab[who].repo, lab[who].server, record.id, trail=trail_for(lab[who]))
    assert left_under(lab.store, record) == []
    with pytest.raises(NotFound):
        lab["owner"].repo.get(record.id)
    assert (stone.id, stone.study_id, stone.subject_id, stone.reason, stone.erased_by) == (
        record.id, lab.study, "S12", ErasureReason.WITHDRAWN, lab[who].id)
    assert lab["owner"].repo.tombstones(lab.study) == [stone]


@pytest.mark.parametrize(("who", "outcome"), [("other", AccessDenied), ("viewer", AccessDenied),
                                              ("outsider", NotFound)])
def test_only_the_uploader_or_an_owner_withdraws_and_a_refusal_changes_nothing(lab, who, outcome):
    record = upload(lab, lab["member"], lab.study)
    with pytest.raises(outcome):
        withdraw(lab.store, lab[who].repo, lab[who].server, record.id, trail=trail_for(lab[who]))
    assert lab["owner"].repo.get(record.id).consent is Consent.INTERNAL
    assert len(left_under(lab.store, record)) == 5


def test_tombstones_are_the_study_owners_and_the_personal_spaces_own(lab):
    in_study = upload(lab, lab["member"], lab.study)
    personal = upload(lab, lab["member"], None)
    withdraw(lab.store, lab["member"].repo, lab["member"].server, in_study.id, trail=trail_for(lab["member"]))
    withdraw(lab.store, lab["member"].repo, lab["member"].server, personal.id, trail=trail_for(lab["member"]))
    assert [t.id for t in lab["member"].repo.tombstones(None)] == [personal.id]
    assert [t.id for t in lab["owner"].repo.tombstones(lab.study)] == [in_study.id]
    assert lab["owner"].repo.tombstones(None) == []
    with pytest.raises(AccessDenied):
        lab["member"].repo.tombstones(lab.study)
    with pytest.raises(NotFound):
        lab["outsider"].repo.tombstones(lab.study)
    conn = sqlite3.connect(lab.db)
    with pytest.raises(sqlite3.IntegrityError, match="never changed"):
        conn.execute("delete from recording_tombstones")
    conn.close()


def test_a_partial_erasure_says_what_is_left_stays_withdrawn_and_finishes_when_run_again(lab):
    record = upload(lab, lab["member"], None)
    repo, server = lab["member"].repo, lab["member"].server
    repo.set_consent(record.id, Consent.SHAREABLE, None)
    keeps_preview = RefusesDeletes(lab.store, lambda k: k.endswith("preview.mp4"))
    with pytest.raises(ErasureIncomplete, match=r"1 file\(s\) are still in storage \(preview.mp4\)") as caught:
        withdraw(keeps_preview, repo, server, record.id, trail=trail_of(repo))
    assert caught.value.left == (record.preview_key,)
    held = repo.get(record.id)
    assert held.consent is Consent.WITHDRAWN and held.status.value == "failed"
    assert repo.tombstones(None) == []
    with pytest.raises(AccessDenied, match="withdrawn"):
        check_shareable(held)
    with pytest.raises(AccessDenied, match="withdrawn"):
        share_link(lab.store, repo, record.id, 600, SETTINGS, trail=trail_of(repo))
    # A plain delete would lose the tombstone:
    report = delete_records(lab.store, repo, server, [record.id], trail=trail_of(repo))
    assert not report.ok and "Withdraw again" in report.summary()
    stone = withdraw(lab.store, repo, server, record.id, trail=trail_of(repo))
    assert left_under(lab.store, record) == [] and repo.tombstones(None) == [stone]


def test_an_erasure_whose_row_cannot_be_deleted_leaves_it_withdrawn_for_a_retry(lab, monkeypatch):
    record = upload(lab, lab["member"], None)
    repo, server = lab["member"].repo, lab["member"].server

    def refuse(*_args, **_kwargs):
        raise MetadataError("The demo database refused the request: disk I/O error")

    monkeypatch.setattr(SqliteServerRecords, "erase", refuse)
    with pytest.raises(MetadataError):
        withdraw(lab.store, repo, server, record.id, trail=trail_of(repo))
    assert left_under(lab.store, record) == [] and repo.get(record.id).consent is Consent.WITHDRAWN
    monkeypatch.undo()
    withdraw(lab.store, repo, server, record.id, trail=trail_of(repo))
    with pytest.raises(NotFound):
        repo.get(record.id)


def test_the_server_erases_only_a_row_marked_withdrawn(lab):
    record = upload(lab, lab["member"], None)
    with pytest.raises(ValidationError, match="withdrawn"):
        lab["member"].server.erase(record.id, ErasureReason.WITHDRAWN)
    assert lab["member"].repo.get(record.id).id == record.id


# --- retention ------------------------------------------------------------------------------------------


def _age(lab: Lab, record: FileRecord, days: int) -> None:
    conn = sqlite3.connect(lab.db)
    moment = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with conn:
        conn.execute("update user_files set created_at = ? where id = ?", (moment, record.id))
    conn.close()


def test_a_study_without_a_retention_period_lists_nothing(lab):
    _age(lab, upload(lab, lab["member"], lab.study), 4_000)
    assert past_retention(lab["owner"].repo, lab.study) == []


def test_recordings_past_the_retention_period_are_listed_for_owners_and_erased_in_one_step(lab):
    old, recent = upload(lab, lab["member"], lab.study), upload(lab, lab["member"], lab.study)
    personal = upload(lab, lab["member"], None)
    _age(lab, old, 40)
    _age(lab, recent, 29)
    _age(lab, personal, 400)
    owner = lab["owner"]
    assert owner.repo.set_retention(lab.study, 30).retention_days == 30
    assert [r.id for r in past_retention(owner.repo, lab.study)] == [old.id]
    for who in ("member", "viewer"):
        with pytest.raises(AccessDenied):
            past_retention(lab[who].repo, lab.study)
        with pytest.raises(AccessDenied):
            erase_past_retention(lab.store, lab[who].repo, lab[who].server, lab.study, trail=trail_for(lab[who]))
    report = erase_past_retention(lab.store, owner.repo, owner.server, lab.study, trail=trail_for(owner))
    assert report.ok and [t.reason for t in report.erased] == [ErasureReason.RETENTION]
    assert left_under(lab.store, old) == [] and len(left_under(lab.store, recent)) == 5
    assert past_retention(owner.repo, lab.study) == []
    assert lab["member"].repo.get(personal.id).id == personal.id  # a personal space has no retention sweep


def test_a_failed_retention_erasure_is_reported_and_retried(lab):
    old = upload(lab, lab["member"], lab.study)
    _age(lab, old, 40)
    owner = lab["owner"]
    owner.repo.set_retention(lab.study, 30)
    keeps_preview = RefusesDeletes(lab.store, lambda k: k.endswith("preview.mp4"))
    report = erase_past_retention(keeps_preview, owner.repo, owner.server, lab.study, trail=trail_for(owner))
    assert not report.ok and "preview.mp4" in report.summary()
    assert [r.id for r in past_retention(owner.repo, lab.study)] == [old.id]  # still listed: withdrawn, failed
    assert erase_past_retention(lab.store, owner.repo, owner.server, lab.study, trail=trail_for(owner)).ok
    assert left_under(lab.store, old) == []


@pytest.mark.parametrize("days", [0, -3, 1.5, True])
def test_a_retention_period_is_a_positive_whole_number_of_days(lab, days):
    with pytest.raises(ValidationError, match="retention period"):
        lab["owner"].repo.set_retention(lab.study, days)


def test_only_owners_set_the_retention_period(lab):
    with pytest.raises(AccessDenied):
        lab["member"].repo.set_retention(lab.study, 30)
    assert lab["owner"].repo.set_retention(lab.study, None).retention_days is None
