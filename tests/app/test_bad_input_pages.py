"""Issue 10's bad-input and fault cases as a browser can send them, through the real pages (AppTest, demo
mode): the sign-in, sign-up and reset forms, the Upload page's dropper and research fields, and the My
files search box. Each case asserts the message the researcher reads and no exception; cases that
may store anything end by reconciling the account's prefix with its rows.

The cases run as a fresh account made through the Create account form, so other app tests' records
(the demo account's) never mix in.
"""

from __future__ import annotations

import errno
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib import demo, media, pipeline, throttle, workspace
from lib.auth import DemoAuth
from lib.demo import DEMO_EMAIL, DEMO_PASSWORD
from lib.errors import MetadataUnavailable
from lib.keys import record_keys
from lib.records import NewRecord, ResearchFields, Status
from lib.repository import SqliteRepository, SqliteServerRecords
from lib.settings import Settings
from lib.storage import ObjectStore
from lib.throttle import FREE_FAILURES
from tests.support import videos
from tests.support.apptest import select_rows, store_anyway
from tests.support.checks import forked_checks
from tests.support.journey import assert_consistent
from tests.support.markdown import rendered
from tests.support.records import backends_of

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT_S = 120
PASSWORD = "bad-input-pages-1"


# --- helpers ---------------------------------------------------------------------------------------------


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return run(at)


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def errors(at: AppTest) -> str:
    return " | ".join(texts(at.error))


def sign_in_page() -> AppTest:
    return run(AppTest.from_file(APP, default_timeout=TIMEOUT_S))


def fill(at: AppTest, form: str, values: dict[str, str]) -> None:
    fields = [t for t in at.text_input if t.form_id == form]
    for label, value in values.items():
        next(t for t in fields if t.label == label).input(value)


def sign_in(at: AppTest, email: str, password: str) -> AppTest:
    fill(at, "sign_in", {"E-mail": email, "Password": password})
    return click(at, "Sign in")


@dataclass(frozen=True)
class Account:
    email: str
    user_id: str

    def repo(self) -> SqliteRepository:
        return SqliteRepository(backends().db_path, self.user_id)

    def page(self, path: str) -> AppTest:
        at = sign_in(sign_in_page(), self.email, PASSWORD)
        return run(at.switch_page(path))

    def check(self) -> None:
        """No orphan object and no ready row without its object in this account's prefix."""
        running = backends()
        settings = Settings(mode="demo", s3=running.s3)
        assert_consistent(ObjectStore(running.s3, settings=settings), self.repo(), settings)


def backends() -> demo.DemoBackends:
    assert demo._running is not None, "the app starts the demo backends on its first run"
    return demo._running


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    """A new account, made through the Create account form (it signs in at once)."""
    email = f"bad-input-{uuid.uuid4().hex[:8]}@lab.test"
    at = sign_in_page()
    fill(at, "sign_up", {"E-mail": email, "Password": PASSWORD, "Repeat password": PASSWORD})
    at = click(at, "Create account")
    assert at.title and at.title[0].value == "Upload"
    yield Account(email, DemoAuth(backends().db_path).sign_in(email, PASSWORD).user_id)
    # The sample is seeded on a background thread; one still running at interpreter exit aborts the process.
    demo.seeding_done(timeout_s=TIMEOUT_S)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("page-clips")
    mjpg = videos.opencv_video(folder, "mjpg", frames=24)
    assert mjpg is not None
    h264 = videos.h264_mp4(folder / "h264.mp4", seconds=0.5)
    return {
        "mjpg": mjpg.read_bytes(),
        "truncated": videos.truncated_copy(h264, folder / "cut.mp4").read_bytes(),
        "broken_index": videos.avi_with_broken_index(mjpg, folder / "broken.avi").read_bytes(),
    }


def unique_clip(folder: Path, frames: int) -> bytes:
    path = videos.write_opencv(folder / f"u{frames}.avi", "MJPG", frames=frames)
    assert path is not None
    return path.read_bytes()


def drop(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="pv_user_upload_files").set_value([(n, b, "video/mp4") for n, b in files])
    return run(at)


# --- sign-in, sign-up and reset forms (13 cases) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        pytest.param("", "", "Enter your e-mail address and password.", id="both-empty"),
        pytest.param(DEMO_EMAIL, "", "Enter your e-mail address and password.", id="no-password"),
        pytest.param("not an e-mail", "whatever-123", "doesn't look like an e-mail address", id="malformed"),
        pytest.param(DEMO_EMAIL, "wrong-password", "don't match an account", id="wrong-password"),
        pytest.param("nobody@lab.test", DEMO_PASSWORD, "don't match an account", id="unknown-user"),
        pytest.param(DEMO_EMAIL, "p" * 50_000, "don't match an account", id="very-long-password"),
        pytest.param("ünï@läb.test", "pässwörd-\U0001f511", "don't match an account", id="unicode"),
        pytest.param(f"  {DEMO_EMAIL.upper()}  ", "wrong", "don't match an account", id="spaces-and-case"),
    ],
)
def test_sign_in_refusals(email: str, password: str, message: str) -> None:
    at = sign_in(sign_in_page(), email, password)
    assert message in errors(at)
    assert "pv_session" not in at.session_state
    assert password not in errors(at) or not password


def test_demo_email_in_other_case_signs_in() -> None:
    at = sign_in(sign_in_page(), f"  {DEMO_EMAIL.upper()} ", DEMO_PASSWORD)
    assert at.title[0].value == "Upload"


@pytest.mark.parametrize(
    ("email", "password", "repeat", "message"),
    [
        pytest.param("new@lab.test", "long-enough-1", "long-enough-2", "The two passwords differ", id="differ"),
        pytest.param("new@lab.test", "short", "short", "at least 8 characters", id="too-short"),
        pytest.param("no-at-sign", "long-enough-1", "long-enough-1", "doesn't look like an e-mail", id="malformed"),
        pytest.param(DEMO_EMAIL, "long-enough-1", "long-enough-1", "already exists", id="taken"),
    ],
)
def test_sign_up_refusals(email: str, password: str, repeat: str, message: str) -> None:
    at = sign_in_page()
    fill(at, "sign_up", {"E-mail": email, "Password": password, "Repeat password": repeat})
    at = click(at, "Create account")
    assert message in errors(at)
    assert "pv_session" not in at.session_state


def test_sign_in_is_throttled_with_a_message_saying_when(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14, attack 6, on the page: after five wrong passwords even the right one waits, and the message
    says until when (demo mode; tests/integration/test_bad_input.py runs the same through Supabase)."""
    monkeypatch.setattr(throttle, "BASE_DELAY_S", 60.0)  # a page run takes longer than the real first wait
    email = f"throttled-{uuid.uuid4().hex[:8]}@lab.test"
    first = sign_in_page()  # starts the demo backends
    DemoAuth(backends().db_path).ensure_account(email, PASSWORD)
    assert "don't match an account" in errors(sign_in(first, email, "wrong-password"))
    for _ in range(FREE_FAILURES - 1):
        assert "don't match an account" in errors(sign_in(sign_in_page(), email, "wrong-password"))
    at = sign_in(sign_in_page(), email, PASSWORD)
    assert re.search(r"Too many failed sign-ins for this e-mail address\. Wait \d+ s \(until \d\d:\d\d:\d\d UTC\), "
                     "then try again", errors(at)), errors(at)
    assert "pv_session" not in at.session_state


def test_an_admin_looking_address_signed_up_is_no_admin() -> None:
    """Issue 14, attack 4, on the page: signing up with an address that reads like the admin's gives a
    researcher; the Usage page shows it no bucket-wide section."""
    email = f"ADMIN-{uuid.uuid4().hex[:6]}@PulseVault.app"
    at = sign_in_page()
    fill(at, "sign_up", {"E-mail": email, "Password": PASSWORD, "Repeat password": PASSWORD})
    at = run(click(at, "Create account").switch_page("pages/usage.py"))
    assert at.title[0].value == "Usage"
    assert not any("administrators" in h.value for h in at.header)
    at = run(at.switch_page("pages/account.py"))
    assert any("**Role** researcher" in m.value for m in at.markdown)


def test_password_reset_in_demo_mode_says_why_not() -> None:
    at = sign_in_page()
    fill(at, "reset_password", {"E-mail": DEMO_EMAIL})
    at = click(at, "Send reset link")
    assert "Demo accounts can't reset passwords" in errors(at)


# --- the Upload page: files that cannot be accepted (6 cases) --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "clip", "words"),
    [
        pytest.param("empty.mp4", b"", "empty (0 bytes)", id="zero-byte"),
        pytest.param("notes.mp4", b"subject 07, heart rate 72 bpm\n" * 40, "plain text", id="text-as-mp4"),
        pytest.param("cut.mp4", "truncated", "truncated", id="truncated"),
        pytest.param("broken.avi", "broken_index", "index", id="broken-index"),
        pytest.param("clip.wmv", "mjpg", ".wmv files are not accepted", id="unsupported-extension"),
        pytest.param("clip.mp4", "mjpg", "Rename it to .avi", id="avi-named-mp4"),
    ],
)
def test_unacceptable_file_is_refused_on_the_page(account: Account, clips, name: str, clip, words: str) -> None:
    data = clips[clip] if isinstance(clip, str) else clip
    at = drop(account.page("pages/upload.py"), (name, data))
    assert words in errors(at)
    assert at.dataframe[-1].value.set_index("File")["Status"].to_dict() == {name: "Not accepted"}
    assert not [b for b in at.button if b.label in ("Upload", "Upload all (1)") and not b.disabled]
    assert not [r for r in account.repo().iter_all() if r.original_name == name]
    account.check()


def test_hostile_names_and_research_fields_through_the_page(account: Account, tmp_path: Path) -> None:
    """Path separators, NUL and a 300-character name; SQL-ish, emoji, control and very long fields."""
    names = ["../../etc/evil.avi", "C:\\lab\\S07\\rest.avi", "nul\x00name.avi", "x" * 300 + ".avi"]
    at = drop(account.page("pages/upload.py"), *[(n, unique_clip(tmp_path, 40 + i)) for i, n in enumerate(names)])
    fields = {"subject": "'; drop table user_files; --", "session": "S\u00e9ance \U0001fac0",
              "tags": " rest, rest ,, daylight ,glasses,daylight, ", "notes": "tab\tnew\nline " + "n" * 20_000}
    for t in [*at.text_input, *at.text_area]:
        for field, value in fields.items():
            if (t.key or "").startswith(f"pv_user_upload_{field}_"):
                t.input(value)
    at = click(store_anyway(run(at)), "Upload all (4)")
    assert sum("Stored and ready" in s for s in texts(at.success)) == 4
    stored = {r.original_name: r for r in account.repo().iter_all() if r.status is Status.READY}
    assert {"evil.avi", "rest.avi", "nulname.avi", "x" * 146 + ".avi"} <= set(stored)
    assert stored["evil.avi"].research == ResearchFields(
        subject_id=fields["subject"], session_label=fields["session"], notes=fields["notes"],
        tags=("rest", "daylight", "glasses"))
    account.check()


def test_same_file_twice_on_the_page(account: Account, tmp_path: Path) -> None:
    data = unique_clip(tmp_path, 60)
    at = drop(account.page("pages/upload.py"), ("twice a.avi", data), ("twice b.avi", data))
    at = click(store_anyway(at), "Upload all (2)")
    assert any("already stored as twice a.avi" in w for w in texts(at.warning))
    assert len([r for r in account.repo().iter_all() if r.original_name.startswith("twice ")]) == 1
    account.check()


# --- the My files search box (9 cases) ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def searchable(account: Account, tmp_path_factory: pytest.TempPathFactory) -> Account:
    """Two stored recordings with awkward names, through the pipeline (objects and rows agree)."""
    running = backends()
    settings = Settings(mode="demo", s3=running.s3)
    store = ObjectStore(running.s3, settings=settings)
    folder = tmp_path_factory.mktemp("search")
    # Names cannot hold quotes or backslashes (they are sanitised away), research fields can.
    awkward = ResearchFields(subject_id="it's \"quoted\" back\\slash")
    for i, (name, research) in enumerate([("100% rest_1.avi", ResearchFields()), ("quoted.avi", awkward)]):
        unique_clip(folder, 70 + i)
        pipeline.process_upload(folder / f"u{70 + i}.avi", name, research, backends_of(settings, store, account.repo()),
                                analyse=False)
    return account


def listed(at: AppTest) -> list[str]:
    """The listed recordings' names (the list is the table with a name column; erased recordings' has none)."""
    tables = [d.value for d in at.dataframe if "name" in d.value.columns]
    return list(tables[0]["name"]) if tables else []


MARKDOWN_NAME = "![x](https://evil.example/x.png) **bold** <img src=x> $x$ [link](https://evil.example).avi"
MARKDOWN_REASON = "failed: ![pixel](https://evil.example/p.png) # heading"


def test_markdown_in_names_and_reasons_is_shown_as_text(account: Account) -> None:
    """Issue 14, attack 9: a recording's name (and a failure reason quoting it) is shown as text in the
    detail heading, the delete dialog, the failure message and the notices: no image, link or LaTeX."""
    server = SqliteServerRecords(backends().db_path, account.user_id)
    rows = []
    for status in (Status.READY, Status.FAILED):
        record_id = str(uuid.uuid4())
        keys = record_keys(account.user_id, record_id, "avi", datetime.now(UTC))
        row = server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=backends().s3.bucket,
                                       original_name=MARKDOWN_NAME, content_type="video/x-msvideo",
                                       size_bytes=1), quota_bytes=10**15)
        rows.append(server.mark_ready(row.id, size_bytes=1, sha256=None, video=None, thumbnail_key=None,
                                      preview_key=None) if status is Status.READY
                    else server.mark_failed(row.id, MARKDOWN_REASON))
    try:
        shown = _shown_on_my_files(account)
    finally:  # rows without objects: the account's later consistency checks must not see them
        for row in rows:
            server.delete(row.id)
    quoted = [text for text in shown if "evil" in text]
    assert len(quoted) >= 4, shown  # two headings, the failure message, the dialog's list
    for text in quoted:
        visible, tags = rendered(text)
        assert tags <= {"p", "br", "ul", "li", "strong"}, (text, tags)  # the dialog's own list and warning
        assert MARKDOWN_NAME in visible or MARKDOWN_REASON in visible, (text, visible)


MARKDOWN_FILE = "![x](https://evil.example/x.png) $x$ [link](https://evil.example) rest_1.wmv"


def test_markdown_in_a_dropped_files_name_is_shown_as_text(account: Account, clips) -> None:
    """Issue 14, attack 9 on the Upload page: the card's heading and its refusal quote the name as text."""
    at = drop(account.page("pages/upload.py"), (MARKDOWN_FILE, clips["mjpg"]))
    quoted = [text for text in [*(m.value for m in at.markdown), *texts(at.error)] if "evil" in text]
    assert len(quoted) >= 2, quoted  # the card's heading and its refusal
    for text in quoted:
        visible, tags = rendered(text)
        assert tags <= {"p", "strong"}, (text, tags)
        assert "evil.example" in visible and "rest_1.wmv" in visible, (text, visible)  # "_" not eaten


def _shown_on_my_files(account: Account) -> list[str]:
    """The texts My files shows for the two recordings named :data:`MARKDOWN_NAME`."""
    at = account.page("pages/files.py")
    at.text_input(key="pv_user_files_search").input("evil.example")
    at = run(at)
    assert listed(at) == [MARKDOWN_NAME, MARKDOWN_NAME]  # dataframe cells are text already
    shown: list[str] = []
    for index in (0, 1):
        at = select_rows(at, index)
        shown += [h.value for h in at.subheader] + texts(at.error)
    at = click(at, "Discard" if any(b.label == "Discard" for b in at.button) else "Delete")
    return shown + [m.value for m in at.markdown if "evil" in m.value]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("100%", ["100% rest_1.avi"], id="percent"),
        pytest.param("rest_1", ["100% rest_1.avi"], id="underscore"),
        pytest.param("%%%", [], id="only-percent"),
        pytest.param("it's", ["quoted.avi"], id="single-quote"),
        pytest.param('"quoted"', ["quoted.avi"], id="double-quotes"),
        pytest.param("back\\slash", ["quoted.avi"], id="backslash"),
        pytest.param("' or 1=1 --", [], id="sql-injection"),
        pytest.param("\"),id.neq.0,(", [], id="postgrest-injection"),
        pytest.param("q" * 5_000, [], id="very-long"),
    ],
)
def test_search_box_input(searchable: Account, text: str, expected: list[str]) -> None:
    at = searchable.page("pages/files.py")
    at.text_input(key="pv_user_files_search").input(text)
    at = run(at)
    assert sorted(listed(at)) == sorted(expected)
    assert not at.error, errors(at)
    if not expected:
        assert any("No recordings match these filters." in i for i in texts(at.info))


# --- faults on the pages (3 cases) ------------------------------------------------------------------------------


def test_metadata_down_while_listing_is_a_clear_message(account: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    at = account.page("pages/files.py")

    def unreachable(*_args, **_kwargs):
        raise MetadataUnavailable("The demo database cannot be opened: disk I/O error")

    monkeypatch.setattr(SqliteRepository, "list", unreachable)
    at = run(at)
    assert "Loading your recordings failed. The demo database cannot be opened" in errors(at)


def no_space(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_copying_the_dropped_file(account: Account, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    at = account.page("pages/upload.py")
    monkeypatch.setattr(workspace.shutil, "copyfileobj", no_space)  # the copy into the workspace
    at.file_uploader(key="pv_user_upload_files").set_value([("full.avi", unique_clip(tmp_path, 80), "video/mp4")])
    at.run()
    assert not at.exception, at.exception
    assert "space" in errors(at)
    account.check()


def test_disk_full_while_making_the_preview(account: Account, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    from components.context import get_services

    at = account.page("pages/upload.py")
    monkeypatch.setattr(media, "make_thumbnail", no_space)
    with forked_checks(get_services()):  # the check runs on a worker: it must see the full disk too
        at.file_uploader(key="pv_user_upload_files").set_value([("full2.avi", unique_clip(tmp_path, 81),
                                                                 "video/mp4")])
        at.run()
    assert not at.exception, at.exception
    assert "space" in errors(at)
    account.check()
