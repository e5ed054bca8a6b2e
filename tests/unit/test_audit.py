"""The audit trail (lib/audit.py) in demo mode's SQLite store: append-only, read as sql/008_audit.sql's row-level
security reads it (tests/sql/test_audit_sql.py proves the SQL), written by every audited action, and an action
whose entry cannot be written does not happen."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import UTC, date, datetime, timedelta

import pytest

from lib.audit import (
    CSV_COLUMNS,
    Actor,
    AuditAction,
    AuditFilter,
    AuditTrail,
    describe,
    entries_csv,
    research_change,
)
from lib.consent import change_consent
from lib.erasure import withdraw
from lib.errors import AccessDenied, AuditUnavailable, MetadataUnavailable, NotFound, ValidationError
from lib.library import delete_records, download_url, edit_research, export_csv, playback_url, share_link
from lib.records import Consent, ListQuery, ResearchFields
from lib.repository import SqliteAuditLog
from lib.studies import Role, add_member, change_role, delete_study, remove_member
from tests.support.audit import TEST_ADDRESS, refused_trail, trail_of
from tests.support.unit_world import SETTINGS
from tests.unit.test_studies import Lab, _upload, make_lab


@pytest.fixture
def lab(tmp_path) -> Lab:
    return make_lab(tmp_path)


class BrokenLog:
    """A log that cannot be written (the database is down, say)."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id

    def append(self, actor, event) -> None:
        raise MetadataUnavailable("The demo database cannot be opened.")

    def entries(self, where):
        return []


def _trail(lab: Lab, name: str) -> AuditTrail:
    return trail_of(lab[name].repo, f"{name}@lab.test")


def _broken(lab: Lab, name: str) -> AuditTrail:
    return AuditTrail(BrokenLog(lab[name].id), Actor(lab[name].id, f"{name}@lab.test"))


def _study_entries(lab: Lab, reader: str = "owner", **narrow) -> list:
    return SqliteAuditLog(lab.db, lab[reader].id).entries(AuditFilter(study_id=lab.study, **narrow))


# --- the store: append-only, read scope ---------------------------------------------------------------


def test_entries_can_be_neither_changed_nor_deleted(lab, store):
    record = _upload(lab["member"], lab.study, subject_id="12")
    playback_url(store, lab["viewer"].repo, record, trail=_trail(lab, "viewer"))
    conn = sqlite3.connect(lab.db)
    try:
        for statement in ("update audit_log set actor_email = 'someone@else'", "delete from audit_log",
                          "update audit_log set action = 'download' where action = 'view'"):
            with pytest.raises(sqlite3.IntegrityError, match="append_only"):
                conn.execute(statement)
    finally:
        conn.close()
    assert [e.actor_email for e in _study_entries(lab)] == ["viewer@lab.test"]


def test_a_studys_owners_read_its_trail_and_nobody_else(lab, store):
    record = _upload(lab["member"], lab.study)
    lab["member"].repo.set_consent(record, Consent.SHAREABLE, None)
    playback_url(store, lab["viewer"].repo, record, trail=_trail(lab, "viewer"))
    assert [(e.action, e.record_id, e.client_address) for e in _study_entries(lab)] == [
        (AuditAction.VIEW, record, TEST_ADDRESS)]
    for reader in ("member", "viewer", "outsider"):
        assert _study_entries(lab, reader) == []


def test_a_personal_trail_is_its_users_alone(lab, store):
    mine = _upload(lab["owner"], None)
    playback_url(store, lab["owner"].repo, mine, trail=_trail(lab, "owner"))
    personal = AuditFilter(study_id=None)
    assert [e.record_id for e in SqliteAuditLog(lab.db, lab["owner"].id).entries(personal)] == [mine]
    assert SqliteAuditLog(lab.db, lab["member"].id).entries(personal) == []
    assert _study_entries(lab) == []  # a personal entry is not the study's


# --- the filters ------------------------------------------------------------------------------------------


def test_who_has_seen_subject_12s_recordings_is_one_filter(lab, store):
    twelve, other = _upload(lab["member"], lab.study, subject_id="12"), _upload(lab["member"], lab.study,
                                                                                subject_id="13")
    playback_url(store, lab["viewer"].repo, twelve, trail=_trail(lab, "viewer"))
    download_url(store, lab["member"].repo, twelve, trail=_trail(lab, "member"))
    playback_url(store, lab["owner"].repo, other, trail=_trail(lab, "owner"))
    edit_research(lab["member"].repo, twelve, ResearchFields(subject_id="12", notes="blinked"),
                  trail=_trail(lab, "member"))
    seen = _study_entries(lab, subject_id="12", actions=(AuditAction.VIEW, AuditAction.DOWNLOAD))
    assert sorted((e.actor_email, e.action) for e in seen) == [
        ("member@lab.test", AuditAction.DOWNLOAD), ("viewer@lab.test", AuditAction.VIEW)]
    # still true once the recording is gone, or its subject edited: the entry keeps the subject it had
    edit_research(lab["member"].repo, twelve, ResearchFields(subject_id="99"), trail=_trail(lab, "member"))
    delete_records(store, lab["owner"].repo, lab["owner"].server, [twelve], trail=_trail(lab, "owner"))
    assert len(_study_entries(lab, subject_id="12", actions=(AuditAction.VIEW, AuditAction.DOWNLOAD))) == 2


def test_filters_by_recording_person_action_and_dates(lab, store):
    first, second = _upload(lab["member"], lab.study), _upload(lab["member"], lab.study)
    playback_url(store, lab["viewer"].repo, first, trail=_trail(lab, "viewer"))
    playback_url(store, lab["viewer"].repo, second, trail=_trail(lab, "viewer"))
    download_url(store, lab["owner"].repo, second, trail=_trail(lab, "owner"))
    assert {e.record_id for e in _study_entries(lab, record_id=first)} == {first}
    assert {e.actor_id for e in _study_entries(lab, actor_id=lab["viewer"].id)} == {lab["viewer"].id}
    assert [e.action for e in _study_entries(lab, actions=(AuditAction.DOWNLOAD,))] == [AuditAction.DOWNLOAD]
    today = datetime.now(UTC).date()
    assert len(_study_entries(lab, date_from=today, date_to=today)) == 3
    assert _study_entries(lab, date_to=today - timedelta(days=1)) == []
    assert _study_entries(lab, date_from=today + timedelta(days=1)) == []
    with pytest.raises(ValidationError, match="start date"):
        _study_entries(lab, date_from=today, date_to=today - timedelta(days=1))


def test_the_csv_holds_every_filtered_entry_with_its_detail(lab, store):
    record = _upload(lab["member"], lab.study, subject_id="12")
    lab["member"].repo.set_consent(record, Consent.SHAREABLE, None)  # internal ones are never shared
    share_link(store, lab["member"].repo, record, 600, SETTINGS, trail=_trail(lab, "member"))
    rows = list(csv.reader(io.StringIO(entries_csv(_study_entries(lab)).decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    line = dict(zip(rows[0], rows[1], strict=True))
    assert (line["action"], line["actor_email"], line["subject_id"], line["recording"], line["client_address"]) \
        == ("share", "member@lab.test", "12", "r.mp4", TEST_ADDRESS)
    assert '"expires_s": 600' in line["detail"]


# --- every action writes its entry -----------------------------------------------------------------------


def test_links_write_view_download_and_share_with_its_expiry(lab, store):
    record = _upload(lab["member"], lab.study)
    lab["member"].repo.set_consent(record, Consent.SHAREABLE, None)
    playback_url(store, lab["viewer"].repo, record, trail=_trail(lab, "viewer"))
    download_url(store, lab["viewer"].repo, record, trail=_trail(lab, "viewer"))
    link = share_link(store, lab["member"].repo, record, 600, SETTINGS, trail=_trail(lab, "member"))
    share = _study_entries(lab, actions=(AuditAction.SHARE,))[0]
    assert share.detail["expires_s"] == 600
    assert abs(datetime.fromisoformat(share.detail["expires_at"]) - link.expires_at) < timedelta(seconds=2)
    assert describe(share).startswith("link works until ")
    assert sorted(e.action for e in _study_entries(lab)) == sorted(
        [AuditAction.VIEW, AuditAction.DOWNLOAD, AuditAction.SHARE])


def test_a_research_edit_keeps_before_and_after_and_no_change_writes_nothing(lab):
    record = _upload(lab["member"], lab.study, subject_id="12", session_label="s1")
    edit_research(lab["owner"].repo, record, ResearchFields(subject_id="12", session_label="s2", tags=("ok",)),
                  trail=_trail(lab, "owner"))
    edit_research(lab["owner"].repo, record, ResearchFields(subject_id="12", session_label="s2", tags=("ok",)),
                  trail=_trail(lab, "owner"))
    [entry] = _study_entries(lab)
    assert entry.detail["changed"] == {"session_label": {"before": "s1", "after": "s2"},
                                       "tags": {"before": [], "after": ["ok"]}}
    assert describe(entry) == "session_label: s1 → s2; tags:  → ok"


def test_a_refused_action_writes_no_entry(lab, store):
    record = _upload(lab["member"], lab.study)
    with pytest.raises(NotFound):
        edit_research(lab["viewer"].repo, record, ResearchFields(subject_id="x"), trail=_trail(lab, "viewer"))
    with pytest.raises(NotFound):
        playback_url(store, lab["outsider"].repo, record, trail=_trail(lab, "outsider"))
    report = delete_records(store, lab["viewer"].repo, lab["viewer"].server, [record], trail=_trail(lab, "viewer"))
    assert report.failed and _study_entries(lab) == []
    with pytest.raises(AccessDenied):
        remove_member(lab["member"].repo, lab.study, lab["owner"].repo.members(lab.study)[0],
                      trail=_trail(lab, "member"))
    assert _study_entries(lab) == []


def test_deletion_and_export_are_recorded(lab, store):
    record = _upload(lab["member"], lab.study, subject_id="7")
    export_csv(lab["viewer"].repo, ListQuery(study_id=lab.study), trail=_trail(lab, "viewer"))
    assert delete_records(store, lab["member"].repo, lab["member"].server, [record], trail=_trail(lab, "member")).ok
    deleted, exported = _study_entries(lab)
    assert (deleted.action, deleted.record_id, deleted.subject_id) == (AuditAction.DELETE, record, "7")
    assert exported.action is AuditAction.EXPORT
    assert (exported.detail["record_ids"], exported.detail["subject_ids"]) == ([record], ["7"])


def test_membership_changes_are_recorded(lab):
    owner = lab["owner"].repo
    trail = _trail(lab, "owner")
    add_member(owner, lab.study, "outsider@lab.test", Role.VIEWER, trail=trail)
    outsider = next(m for m in owner.members(lab.study) if m.email == "outsider@lab.test")
    change_role(owner, lab.study, outsider, Role.MEMBER, trail=trail)
    remove_member(owner, lab.study, outsider, trail=trail)
    entries = _study_entries(lab, actor_id=lab["owner"].id)
    assert [(e.action, e.detail["member_email"]) for e in entries] == [
        (AuditAction.MEMBER_REMOVE, "outsider@lab.test"), (AuditAction.MEMBER_ROLE, "outsider@lab.test"),
        (AuditAction.MEMBER_ADD, "outsider@lab.test")]
    assert (entries[1].detail["role_before"], entries[1].detail["role"]) == ("viewer", "member")
    assert describe(entries[1]) == "outsider@lab.test (viewer → member)"


# --- no entry, no action ------------------------------------------------------------------------------------


def test_no_link_is_issued_when_its_entry_cannot_be_written(lab, store):
    record = _upload(lab["member"], lab.study)
    lab["member"].repo.set_consent(record, Consent.SHAREABLE, None)
    for issue in (lambda t: playback_url(store, lab["viewer"].repo, record, trail=t),
                  lambda t: download_url(store, lab["viewer"].repo, record, trail=t),
                  lambda t: share_link(store, lab["member"].repo, record, 600, SETTINGS, trail=t),
                  lambda t: export_csv(lab["viewer"].repo, ListQuery(study_id=lab.study), trail=t)):
        with pytest.raises(AuditUnavailable, match="Nothing was done: the audit trail"):
            issue(_broken(lab, "member"))


def test_an_edit_whose_entry_cannot_be_written_is_undone(lab):
    record = _upload(lab["member"], lab.study, subject_id="12")
    with pytest.raises(AuditUnavailable):
        edit_research(lab["member"].repo, record, ResearchFields(subject_id="13"), trail=_broken(lab, "member"))
    assert lab["owner"].repo.get(record).research.subject_id == "12"


def test_membership_changes_whose_entry_cannot_be_written_are_undone(lab):
    owner = lab["owner"].repo
    broken = _broken(lab, "owner")
    with pytest.raises(AuditUnavailable):
        add_member(owner, lab.study, "outsider@lab.test", Role.VIEWER, trail=broken)
    member = next(m for m in owner.members(lab.study) if m.email == "member@lab.test")
    with pytest.raises(AuditUnavailable):
        change_role(owner, lab.study, member, Role.VIEWER, trail=broken)
    with pytest.raises(AuditUnavailable):
        remove_member(owner, lab.study, member, trail=broken)
    assert [(m.email, m.role) for m in owner.members(lab.study)] == [
        ("owner@lab.test", Role.OWNER), ("member@lab.test", Role.MEMBER), ("viewer@lab.test", Role.VIEWER)]


def test_research_change_lists_only_what_changed():
    before = ResearchFields(subject_id="1", notes="n" * 5_000)
    after = ResearchFields(subject_id="2", notes="n" * 5_000)
    assert research_change(before, after) == {"changed": {"subject_id": {"before": "1", "after": "2"}}}



def test_an_erasure_is_recorded_before_it_starts_and_refused_without_its_entry(lab, store):
    member = lab["member"]
    record = _upload(member, lab.study, subject_id="12")
    with pytest.raises(AuditUnavailable):
        withdraw(store, member.repo, member.server, record, trail=_broken(lab, "member"))
    assert member.repo.get(record).consent is Consent.INTERNAL  # nothing was changed
    withdraw(store, member.repo, member.server, record, trail=_trail(lab, "member"))
    [entry] = _study_entries(lab, actions=(AuditAction.ERASE,))
    assert (entry.subject_id, entry.detail["reason"], entry.detail["name"]) == ("12", "withdrawn", "r.mp4")


def test_a_study_deletion_is_recorded_and_its_trail_outlives_it(lab, store):
    record = _upload(lab["member"], lab.study)
    add_member(lab["owner"].repo, lab.study, "outsider@lab.test", Role.VIEWER, trail=_trail(lab, "owner"))
    for refused in (lambda: delete_study(lab["member"].repo, lab.study, trail=refused_trail(lab["member"].id)),
                    lambda: delete_study(lab["owner"].repo, lab.study, trail=refused_trail(lab["owner"].id))):
        with pytest.raises((AccessDenied, ValidationError)):  # not an owner; not empty yet
            refused()
    delete_records(store, lab["owner"].repo, lab["owner"].server, [record], trail=_trail(lab, "owner"))
    with pytest.raises(AuditUnavailable):
        delete_study(lab["owner"].repo, lab.study, trail=_broken(lab, "owner"))
    assert lab["owner"].repo.study(lab.study).name == "Sleep 2024"  # no entry, no deletion
    delete_study(lab["owner"].repo, lab.study, trail=_trail(lab, "owner"))
    assert lab["owner"].repo.studies() == []
    conn = sqlite3.connect(lab.db)
    try:
        kept = conn.execute("select action, detail from audit_log where study_id = ? order by id",
                            (lab.study,)).fetchall()
    finally:
        conn.close()
    assert [a for a, _ in kept] == ["member_add", "delete", "study_delete"]
    detail = json.loads(kept[-1][1])
    assert detail["study_name"] == "Sleep 2024"
    assert {"email": "outsider@lab.test", "role": "viewer"} in detail["members"]


def test_a_consent_change_is_recorded_and_undone_without_its_entry(lab):
    record = _upload(lab["member"], lab.study, subject_id="12")
    with pytest.raises(AuditUnavailable):
        change_consent(lab["member"].repo, record, Consent.SHAREABLE, date(2024, 5, 2), trail=_broken(lab, "member"))
    assert lab["owner"].repo.get(record).consent is Consent.INTERNAL
    change_consent(lab["member"].repo, record, Consent.SHAREABLE, date(2024, 5, 2), trail=_trail(lab, "member"))
    [entry] = _study_entries(lab, actions=(AuditAction.CONSENT,))
    assert (entry.subject_id, entry.detail["changed"]) == ("12", {
        "consent": {"before": "internal", "after": "shareable"},
        "consent_date": {"before": None, "after": "2024-05-02"}})
    assert describe(entry) == "consent: internal → shareable; consent_date: None → 2024-05-02"
