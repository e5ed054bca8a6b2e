"""Issue 15's journey in Chromium, demo mode: a lab shares a study by role.

The owner creates a study and adds a member and a viewer by e-mail; the viewer is not offered the study on
the Upload page; the member uploads into it and the recording appears for the owner; the viewer plays it and
the owner's audit trail shows that playback; the owner withdraws its consent and nothing of it is left in
the bucket (asked of the bucket itself).
"""

from __future__ import annotations

import csv
import io
import sqlite3
import uuid
from pathlib import Path

import pytest

from lib.demo import DEMO_BUCKET
from tests.e2e.test_journey import (
    STEP_TIMEOUT_MS,
    choose,
    create_account,
    go,
    select_first_row,
    wait_until_playable,
)
from tests.support.app_server import RunningApp
from tests.support.demo_storage import demo_storage
from tests.support.journey import lossless_face_avi

STUDY = "Sleep lab"
PASSWORD = "study-journey-2026"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lossless_face_avi(tmp_path_factory.mktemp("study-clips"), "night one")


def open_as(browser, app: RunningApp, email: str):
    """A browser of its own for one person, signed in with a new account (the member and viewer exist before
    they are added, so they join at once)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(60_000)
    page = context.new_page()
    create_account(page, app.url, email, PASSWORD)
    return context, page


def add_member(page, email: str, role: str) -> None:
    form = page.get_by_test_id("stForm").filter(has_text="Add a member")
    form.get_by_label("E-mail", exact=True).fill(email)
    if role != "member":  # the form's default
        choose(page, "Role", role, scope=form)
    form.get_by_role("button", name="Add").click()
    page.get_by_text(f"{email} joined {STUDY} as {role}.").first.wait_for()


def show_study(page) -> None:
    """My files, switched to the study's space, with its one recording listed."""
    go(page, "My files")
    choose(page, "Show", f"Study: {STUDY}")
    page.get_by_text("of 1 recording").first.wait_for(timeout=STEP_TIMEOUT_MS)


def study_id(app: RunningApp) -> str:
    with sqlite3.connect(demo_storage(app).db_path) as conn:
        return str(conn.execute("select id from studies where name = ?", (STUDY,)).fetchone()[0])


def test_a_lab_shares_a_study_by_role(demo_app, browser, recording) -> None:
    tag = uuid.uuid4().hex[:6]
    emails = {role: f"{role}-{tag}@lab.test" for role in ("owner", "member", "viewer")}
    people = {role: open_as(browser, demo_app, email) for role, email in emails.items()}
    owner, member, viewer = (people[r][1] for r in ("owner", "member", "viewer"))
    try:
        # The owner creates the study and adds the member and the viewer.
        go(owner, "Studies")
        owner.get_by_text("New study").first.click()
        owner.get_by_label("Name", exact=True).fill(STUDY)
        owner.get_by_role("button", name="Create study").click()
        owner.get_by_role("heading", name="Members").wait_for()
        add_member(owner, emails["member"], "member")
        add_member(owner, emails["viewer"], "viewer")

        # The viewer is not offered the study to upload into.
        go(viewer, "My files")
        go(viewer, "Upload")
        viewer.get_by_text("Studies where you are a viewer are not offered").first.wait_for()
        assert viewer.get_by_label("Store into").count() == 0

        # The member uploads into the study.
        go(member, "My files")
        go(member, "Upload")
        choose(member, "Store into", f"Study: {STUDY}")
        member.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(recording))
        member.get_by_role("button", name="Upload all (1)").wait_for(timeout=STEP_TIMEOUT_MS)
        member.get_by_role("button", name="Upload all (1)").click()
        member.get_by_test_id("stAlert").filter(has_text="Stored and ready").first.wait_for(timeout=STEP_TIMEOUT_MS)
        prefix = f"studies/{study_id(demo_app)}/"
        client = demo_storage(demo_app).client()
        assert client.list_objects_v2(Bucket=DEMO_BUCKET, Prefix=prefix).get("KeyCount", 0) >= 2

        # The owner sees it; the viewer plays it.
        show_study(owner)
        show_study(viewer)
        select_first_row(viewer)
        viewer.get_by_role("heading", name=recording.name).wait_for()
        wait_until_playable(viewer, 1)

        # The owner's audit trail (its CSV) shows that playback, by the viewer.
        go(owner, "Studies")
        owner.get_by_role("heading", name="Audit trail").wait_for()
        with owner.expect_download() as download:
            owner.get_by_role("button", name="Export CSV").click()
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
        assert {(r["action"], r["actor_email"], r["recording"]) for r in rows} >= {
            ("view", emails["viewer"], recording.name), ("upload", emails["member"], recording.name)}

        # The owner withdraws its consent: nothing of it is left in the bucket.
        show_study(owner)
        select_first_row(owner)
        owner.get_by_role("heading", name=recording.name).wait_for()
        owner.get_by_text("Consent: Internal use only").first.click()
        owner.get_by_role("button", name="Withdraw consent and erase…").click()
        owner.get_by_role("button", name="Withdraw and erase").click()
        owner.get_by_text("nothing of it is left in storage").first.wait_for(timeout=STEP_TIMEOUT_MS)
        assert client.list_objects_v2(Bucket=DEMO_BUCKET, Prefix=prefix).get("KeyCount", 0) == 0
        assert "Traceback" not in owner.content() + member.content() + viewer.content()
    finally:
        for context, _page in people.values():
            context.close()
