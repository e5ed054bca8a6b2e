"""AppTest of the Export dataset dialog in demo mode, from My files and from a study on the Studies page: the
selection or the current filter, the layout, the refusals and what consent left out, shown before anything is
sent, and the one-time download link (its route is tested against
SeaweedFS in tests/integration/test_export.py)."""

from __future__ import annotations

import uuid

import pytest
from streamlit.testing.v1 import AppTest

from components import state_keys
from lib.audit import AuditAction, AuditFilter
from lib.demo import start_demo
from lib.export import Layout
from lib.records import ResearchFields
from lib.repository import SqliteAuditLog, SqliteRepository, SqliteServerRecords
from lib.storage import ObjectStore
from lib.studies import Role
from tests.app.test_files_page import backends, click, demo_server, files_page, run, search, select
from tests.support.apptest import new_demo_account, signed_in_app
from tests.support.export_world import add_recording, attach, pulse_csv, store_recording


@pytest.fixture
def at() -> AppTest:
    return files_page()


@pytest.fixture
def token() -> str:
    return "x" + uuid.uuid4().hex[:10]


def demo_store() -> ObjectStore:
    return ObjectStore(backends().s3)


def open_dialog(at: AppTest, layout: Layout) -> AppTest:
    click(at, "Export dataset", key=state_keys.FILES_DATASET)
    at.radio(key=state_keys.FILES_DATASET_LAYOUT).set_value(layout)
    return run(at)


def link_urls(at: AppTest) -> list[str]:
    """The link buttons' targets (AppTest has no accessor of its own for them)."""
    return [e.proto.url for e in at.get("link_button")]


def test_the_selection_exports_as_ubfc_with_a_one_time_link(at: AppTest, token: str) -> None:
    store, server = demo_store(), demo_server()
    add_recording(store, server, f"{token} a.avi", subject="S3", truth=pulse_csv())
    add_recording(store, server, f"{token} b.avi", subject="S4", truth=pulse_csv())
    search(at, token)
    select(at, 0)
    open_dialog(at, Layout.UBFC)
    assert at.radio(key=state_keys.FILES_DATASET_CHOICE).options == [
        "The 1 selected recording", "Every recording matching the current filter"]
    click(at, "Prepare export", key=state_keys.FILES_DATASET_PREPARE)
    assert not at.error, [e.value for e in at.error]
    (ready,) = [s.value for s in at.success]
    assert "Ready: 1 recording" in ready and "streamed from storage" in ready
    prepared = at.session_state[state_keys.FILES_DATASET_READY][1]
    assert prepared.download_url.startswith("/pulsevault/export?ticket=")
    assert prepared.download_url in link_urls(at)
    assert [o.path for o in prepared.plan.objects] == ["subject4/vid.avi"]  # newest first: b is row 0


def test_the_current_filter_and_a_refusal_before_anything_is_sent(at: AppTest, token: str) -> None:
    store, server = demo_store(), demo_server()
    add_recording(store, server, f"{token} with.avi", subject="1", truth=pulse_csv())
    add_recording(store, server, f"{token} without.avi", subject="2")
    search(at, token)
    open_dialog(at, Layout.UBFC)
    assert at.radio(key=state_keys.FILES_DATASET_CHOICE).options == ["Every recording matching the current filter"]
    click(at, "Prepare export", key=state_keys.FILES_DATASET_PREPARE)
    (error,) = [e.value for e in at.error]
    assert "needs ground truth for every recording" in error and "without.avi has no ground truth" in error
    assert not at.success and state_keys.FILES_DATASET_READY not in at.session_state
    at.radio(key=state_keys.FILES_DATASET_LAYOUT).set_value(Layout.BIDS)
    click(at, "Prepare export", key=state_keys.FILES_DATASET_PREPARE)
    assert not at.error and "Ready: 2 recordings" in at.success[0].value


def test_a_studys_viewer_exports_it_from_the_studies_page_and_is_told_what_was_left_out() -> None:
    db = start_demo([]).db_path
    _, _, owner_id = new_demo_account()
    viewer_email, viewer_password, viewer_id = new_demo_account()
    owner = SqliteRepository(db, owner_id)
    study = owner.create_study("Export " + uuid.uuid4().hex[:6])
    owner.add_member(study.id, viewer_email, Role.VIEWER)
    store, uploader = ObjectStore(start_demo([]).s3), SqliteServerRecords(db, owner_id)
    kept = attach(store, uploader, store_recording(store, uploader, "night 1.avi", b"one" * 500,
                                                   ResearchFields(subject_id="12"), study.id), pulse_csv())
    withdrawn = store_recording(store, uploader, "night 2.avi", b"two" * 500, ResearchFields(subject_id="13"),
                                study.id)
    uploader.mark_withdrawn(withdrawn.id, "consent withdrawn")

    at = signed_in_app("pages/studies.py", email=viewer_email, password=viewer_password)
    at.selectbox(key=state_keys.STUDIES_SELECTED).set_value(study.id)
    run(at)
    click(at, "Export dataset", key=state_keys.STUDIES_EXPORT)  # viewers download, so they export
    assert at.radio(key=state_keys.FILES_DATASET_CHOICE).options == ["Every recording matching the current filter"]
    at.radio(key=state_keys.FILES_DATASET_LAYOUT).set_value(Layout.UBFC)
    run(at)
    click(at, "Prepare export", key=state_keys.FILES_DATASET_PREPARE)
    assert not at.error, [e.value for e in at.error]
    assert "Ready: 1 recording" in at.success[0].value
    (warning,) = [w.value.replace("\\", "") for w in at.warning]
    assert "Left out of this export (1 recording)" in warning and "night 2.avi: its consent was withdrawn" in warning
    prepared = at.session_state[state_keys.FILES_DATASET_READY][1]
    assert [o.path for o in prepared.plan.objects] == ["subject12/vid.avi"]
    assert prepared.download_url in link_urls(at)
    (entry,) = SqliteAuditLog(db, owner_id).entries(AuditFilter(study_id=study.id, subject_id="12"))
    assert (entry.action, entry.actor_id, entry.record_id) == (AuditAction.EXPORT, viewer_id, kept.id)
