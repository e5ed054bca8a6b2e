"""AppTest of the Studies page's audit trail (demo mode): its owners filter it by recording, subject, person,
action and dates, and export what the filters show as CSV; members and viewers do not see it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pandas as pd
from streamlit.testing.v1 import AppTest

from components import audit_view, state_keys
from lib.audit import AuditAction, entries_csv
from lib.demo import start_demo
from lib.keys import new_record_id, record_keys
from lib.library import download_url, playback_url
from lib.records import NewRecord, ResearchFields
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.storage import ObjectStore
from lib.studies import Role
from tests.support.apptest import new_demo_account, signed_in_app
from tests.support.audit import TEST_ADDRESS, trail_of

QUOTA = 10**12


def _stored(db: str, uploader: str, study: str, name: str, subject: str) -> str:
    record_id = new_record_id()
    keys = record_keys(uploader, record_id, "mp4", datetime.now(UTC), study)
    server = SqliteServerRecords(db, uploader)
    server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket="demo", original_name=name,
                             content_type="video/mp4", size_bytes=2048, study_id=study,
                             research=ResearchFields(subject_id=subject)), QUOTA)
    server.mark_ready(record_id, size_bytes=2048, sha256=None, video=None, thumbnail_key=keys.thumbnail,
                      preview_key=None)
    return record_id


def _trail_table(at: AppTest) -> pd.DataFrame:
    assert any(h.value == "Audit trail" for h in at.subheader)
    return at.dataframe[2].value  # members, recordings, then the trail


def _rows(at: AppTest) -> list[tuple[str, str, str]]:
    table = _trail_table(at)
    return sorted(zip(table["Who"], table["Action"], table["Subject"], strict=True))


def test_an_owner_finds_who_has_seen_subject_12_and_exports_it(monkeypatch) -> None:
    exported: list[bytes] = []

    def capture(entries):
        exported.append(entries_csv(entries))
        return exported[-1]

    monkeypatch.setattr(audit_view, "entries_csv", capture)  # what the Export CSV button was given
    demo = start_demo([])
    db = demo.db_path
    owner_email, owner_password, owner_id = new_demo_account()
    member_email, member_password, member_id = new_demo_account()
    viewer_email, _, viewer_id = new_demo_account()
    owner = SqliteRepository(db, owner_id)
    study = owner.create_study("Audit study").id
    owner.add_member(study, member_email, Role.MEMBER)
    owner.add_member(study, viewer_email, Role.VIEWER)
    twelve = _stored(db, member_id, study, "rest-12.mp4", "12")
    thirteen = _stored(db, member_id, study, "rest-13.mp4", "13")
    store = ObjectStore(demo.s3)
    viewer, member = SqliteRepository(db, viewer_id), SqliteRepository(db, member_id)
    playback_url(store, viewer, twelve, trail=trail_of(viewer, viewer_email))
    download_url(store, member, twelve, trail=trail_of(member, member_email))
    playback_url(store, owner, thirteen, trail=trail_of(owner, owner_email))

    at = signed_in_app("pages/studies.py", email=owner_email, password=owner_password)
    at.selectbox(key=state_keys.STUDIES_SELECTED).set_value(study).run()
    assert len(_trail_table(at)) == 3
    assert set(_trail_table(at)["Address"]) == {TEST_ADDRESS}

    # "who has seen subject 12's recordings": one filter, the subject (with the view and download actions)
    at.text_input(key=state_keys.AUDIT_SUBJECT).input("12").run()
    at.multiselect(key=state_keys.AUDIT_ACTIONS).set_value([AuditAction.VIEW, AuditAction.DOWNLOAD]).run()
    assert not at.exception, at.exception
    assert _rows(at) == sorted([(member_email, "downloaded (download link)", "12"),
                                (viewer_email, "viewed (playback link)", "12")])
    export = at.get("download_button")
    assert [b.proto.label for b in export] == ["Export CSV"]
    lines = list(csv.DictReader(io.StringIO(exported[-1].decode())))
    assert sorted((row["actor_email"], row["action"], row["recording"]) for row in lines) == sorted(
        [(member_email, "download", "rest-12.mp4"), (viewer_email, "view", "rest-12.mp4")])

    at.selectbox(key=state_keys.AUDIT_PERSON).set_value(viewer_id).run()
    assert _rows(at) == [(viewer_email, "viewed (playback link)", "12")]

    at.selectbox(key=state_keys.AUDIT_PERSON).set_value("").run()
    at.text_input(key=state_keys.AUDIT_SUBJECT).input("").run()
    at.multiselect(key=state_keys.AUDIT_ACTIONS).set_value([]).run()
    at.selectbox(key=state_keys.AUDIT_RECORDING).set_value(thirteen).run()
    assert _rows(at) == [(owner_email, "viewed (playback link)", "13")]

    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    at.date_input(key=state_keys.AUDIT_TO).set_value(yesterday).run()
    assert any("No entries match" in i.value for i in at.info)
    at.date_input(key=state_keys.AUDIT_FROM).set_value(yesterday + timedelta(days=2)).run()
    assert any("start date is after the end date" in w.value for w in at.warning)

    seen_by_member = signed_in_app("pages/studies.py", email=member_email, password=member_password)
    seen_by_member.selectbox(key=state_keys.STUDIES_SELECTED).set_value(study).run()
    assert not any(h.value == "Audit trail" for h in seen_by_member.subheader)


def _personal_trail(at: AppTest) -> pd.DataFrame:
    """My files' last table: the personal space's trail (the recordings' list comes first)."""
    assert any(h.value == "Audit trail of your personal space" for h in at.subheader)
    return next(d.value for d in reversed(at.dataframe) if "Who" in d.value.columns)


def test_a_user_reads_their_personal_spaces_trail_with_its_filters_and_csv(monkeypatch) -> None:
    exported: list[bytes] = []
    monkeypatch.setattr(audit_view, "entries_csv", lambda entries: exported.append(entries_csv(entries)) or
                        exported[-1])
    demo = start_demo([])
    db = demo.db_path
    email, password, user_id = new_demo_account()
    other_email, _, other_id = new_demo_account()
    mine = _stored(db, user_id, None, "home-12.mp4", "12")
    theirs = _stored(db, other_id, None, "theirs-12.mp4", "12")
    store = ObjectStore(demo.s3)
    me, other = SqliteRepository(db, user_id), SqliteRepository(db, other_id)
    playback_url(store, me, mine, trail=trail_of(me, email))
    download_url(store, me, mine, trail=trail_of(me, email))
    playback_url(store, other, theirs, trail=trail_of(other, other_email))  # another user's: never shown

    at = signed_in_app("pages/files.py", email=email, password=password)
    assert not any(h.value == "Audit trail of your personal space" for h in at.subheader)  # read when asked
    at.toggle(key=state_keys.AUDIT_PERSONAL).set_value(True).run()
    table = _personal_trail(at)
    assert sorted(zip(table["Who"], table["Action"], table["Recording"], strict=True)) == [
        (email, "downloaded (download link)", "home-12.mp4"), (email, "viewed (playback link)", "home-12.mp4")]
    assert not any(s.key == state_keys.AUDIT_PERSON for s in at.selectbox)  # only its user acts there
    at.multiselect(key=state_keys.AUDIT_ACTIONS).set_value([AuditAction.DOWNLOAD]).run()
    assert not at.exception, at.exception
    assert list(_personal_trail(at)["Action"]) == ["downloaded (download link)"]
    lines = list(csv.DictReader(io.StringIO(exported[-1].decode())))
    assert [(row["actor_id"], row["action"], row["record_id"]) for row in lines] == [(user_id, "download", mine)]
