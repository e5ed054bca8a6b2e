"""Issue 15's journey in Chromium, demo mode: a lab shares a study by role.

The owner creates a study and adds a member and a viewer by e-mail; the viewer is not offered the study on
the Upload page; the member uploads into it and the recording appears for the owner; the viewer plays it and
the owner's audit trail shows that playback; the owner withdraws its consent and nothing of it is left in
the bucket (asked of the bucket itself); the owner moves a personal recording of theirs into the study: it is
listed there and no longer in their personal space, its objects left the old key prefix for the study's, and
the study's audit trail shows the move.
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


@pytest.fixture(scope="module")
def personal_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The owner's own recording, uploaded to their personal space and then moved into the study."""
    return lossless_face_avi(tmp_path_factory.mktemp("personal-clips"), "day one")


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


def record_folder_of(app: RunningApp, name: str) -> str:
    """The key prefix (``…/{record_id}/``) of the one recording called ``name``, as its row says now."""
    with sqlite3.connect(demo_storage(app).db_path) as conn:
        key = str(conn.execute("select s3_key from user_files where original_name = ?", (name,)).fetchone()[0])
    return key.rsplit("/", 1)[0] + "/"


def object_names(client, prefix: str) -> list[str]:
    listed = client.list_objects_v2(Bucket=DEMO_BUCKET, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"].removeprefix(prefix) for o in listed)


def upload(page, clip: Path) -> None:
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(clip))
    page.get_by_role("button", name="Upload all (1)").wait_for(timeout=STEP_TIMEOUT_MS)
    page.get_by_role("button", name="Upload all (1)").click()
    page.get_by_test_id("stAlert").filter(has_text="Stored and ready").first.wait_for(timeout=STEP_TIMEOUT_MS)


def audit_rows(page) -> list[dict[str, str]]:
    """The study's audit trail, as its CSV export on the Studies page."""
    go(page, "Studies")
    page.get_by_role("heading", name="Audit trail").wait_for()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    return list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))


def move_into_study(page, name: str) -> None:
    """My files' personal space: select the one recording ``name`` and move it into the study."""
    go(page, "My files")
    choose(page, "Show", "My files (personal space)")
    page.get_by_text("of 1 recording").first.wait_for(timeout=STEP_TIMEOUT_MS)
    select_first_row(page)
    page.get_by_role("heading", name=name).wait_for()
    page.get_by_text("Move to study …").first.click()
    choose(page, "Move to", STUDY)
    page.get_by_role("button", name="Move", exact=True).click()
    page.get_by_text(f"Moved {name}; its history moved with it.").first.wait_for(timeout=STEP_TIMEOUT_MS)


def test_a_lab_shares_a_study_by_role(demo_app, browser, recording, personal_recording) -> None:
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
        upload(member, recording)
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
        rows = audit_rows(owner)
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

        # The owner moves a personal recording of theirs into the study, with its objects and its history.
        go(owner, "Upload")
        upload(owner, personal_recording)
        old = record_folder_of(demo_app, personal_recording.name)
        stored = object_names(client, old)
        assert old.startswith("recordings/") and "original.avi" in stored
        move_into_study(owner, personal_recording.name)
        owner.get_by_text("No recordings yet").first.wait_for()  # gone from the personal space
        show_study(owner)
        select_first_row(owner)
        owner.get_by_role("heading", name=personal_recording.name).wait_for()
        new = record_folder_of(demo_app, personal_recording.name)
        assert new.startswith(prefix) and new.rsplit("/", 2)[-2] == old.rsplit("/", 2)[-2]  # the same record id
        assert object_names(client, old) == []
        assert object_names(client, new) == stored
        move = [r for r in audit_rows(owner) if r["action"] == "move"]
        assert [(r["actor_email"], r["recording"], r["study_id"]) for r in move] == [
            (emails["owner"], personal_recording.name, prefix.split("/")[1])]
        assert "Traceback" not in owner.content() + member.content() + viewer.content()
    finally:
        for context, _page in people.values():
            context.close()
