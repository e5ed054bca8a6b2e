"""AppTest of My files' Export dataset dialog in demo mode: the selection or the current filter, the layout,
the refusals shown before anything is sent, and the one-time download link (its route is tested against
SeaweedFS in tests/integration/test_export.py)."""

from __future__ import annotations

import uuid

import pytest
from streamlit.testing.v1 import AppTest

from components import state_keys
from lib.export import Layout
from lib.storage import ObjectStore
from tests.app.test_files_page import backends, click, demo_server, files_page, run, search, select
from tests.support.export_world import add_recording, pulse_csv


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
