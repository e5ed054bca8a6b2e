"""Issue 10: two researchers signed in at once (cloud mode: SeaweedFS + the Supabase stand-in with RLS), each in
their own browser context.

In the browser: each sees only their own recordings; whatever B types or puts in the URL (A's file
name, A's record id, A's storage key) shows nothing of A's; and while A uploads, B's page and the
websocket frames B receives never carry A's file name, record id, user id or progress.

Under the browser, what a crafted id or key could reach if some input passed it on: with B's own
session (B's JWT, so RLS decides), the server's records for B (service role) and the app's object
store, every library call on A's record id or A's keys is refused before anything is signed or
deleted, and A's files are untouched. Library calls take record ids and the session's repository,
never a record object, so a hand-built record claiming an owner has no way in (issue 14, attack 7).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from supabase import create_client

from lib import library
from lib.errors import AccessDenied, KeyOwnershipError, NotFound, PulseVaultError
from lib.keys import user_prefix
from lib.records import FileRecord, ListQuery, NewRecord, ResearchFields
from lib.repository import SupabaseRepository, SupabaseServerRecords, new_service_client
from lib.settings import S3Settings, Settings, SupabaseSettings
from lib.storage import ObjectStore
from lib.usage import reconcile
from tests.support import cloud as cloud_support
from tests.support.audit import refused_trail
from tests.support.browser import DEFAULT_TIMEOUT_MS, sign_in, store_anyway
from tests.support.journey import BrowserCapture, Holdings, lossy_mp4

UPLOAD_TIMEOUT_MS = 120_000


def new_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    return context, page


def stored_alert(page):
    return page.get_by_test_id("stAlert").filter(has_text="Stored and ready")


def upload(page, path: Path, on_tick: Callable[[], None] = lambda: None) -> None:
    """Drop one file and press Upload until it is stored; ``on_tick`` runs while waiting."""
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(path))
    button = page.get_by_role("button", name="Upload", exact=True).first  # a rerun may show a fading copy
    button.wait_for(timeout=UPLOAD_TIMEOUT_MS)
    store_anyway(page, timeout_ms=UPLOAD_TIMEOUT_MS)  # a faceless clip: no pulse to read
    deadline = time.monotonic() + UPLOAD_TIMEOUT_MS / 1000
    next_click = 0.0
    while not stored_alert(page).count():
        assert time.monotonic() < deadline, f"the upload of {path.name} did not finish"
        if time.monotonic() >= next_click and button.count() and button.is_enabled():
            button.click()
            next_click = time.monotonic() + 10  # a click swallowed by a rerun is repeated
        on_tick()
        time.sleep(0.3)


def my_files(page, capture: BrowserCapture, text: str = "") -> str:
    """My files (searched for ``text``): the page's text plus what its websocket delivered meanwhile
    (the table is drawn on a canvas; its rows arrive as Arrow data in those frames)."""
    first = len(capture.frames)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="My files").click()
    page.get_by_role("heading", name="My files").first.wait_for()
    box = page.get_by_placeholder("name, subject, session, notes…")
    box.fill(text)
    box.press("Enter")
    page.get_by_text("recordings · page").or_(page.get_by_text("No recordings")).first.wait_for()
    time.sleep(1)  # the rerun that follows Enter settles
    capture.snapshot(page, f"my files {text!r}")
    delivered = b"".join(capture.frames[first:]).decode("utf-8", "replace")
    return page.inner_text("body") + "\n" + delivered


def as_user(cloud, email: str) -> tuple[SupabaseRepository, str]:
    client = create_client(cloud.supabase_url, cloud.anon_key)
    user = client.auth.sign_in_with_password({"email": email, "password": cloud_support.USER_PASSWORD}).user
    assert user is not None
    return SupabaseRepository(client, user.id), user.id


def server_for(cloud, user_id: str) -> SupabaseServerRecords:
    """What the app's server writes with for the signed-in ``user_id`` (the service-role key)."""
    settings = SupabaseSettings(cloud.supabase_url, cloud.anon_key, cloud.service_role_key)
    return SupabaseServerRecords(new_service_client(settings), user_id)


def app_store(cloud) -> tuple[Settings, ObjectStore]:
    s3 = S3Settings(bucket=cloud_support.BUCKET, region=cloud_support.REGION,
                    access_key_id=cloud_support.ACCESS_KEY_ID, secret_access_key=cloud_support.SECRET_ACCESS_KEY,
                    endpoint_url=cloud.s3_endpoint)
    settings = Settings(mode="cloud", s3=s3)
    return settings, ObjectStore(s3, settings=settings)


@pytest.fixture(scope="module")
def stored(cloud, cloud_app, browser, tmp_path_factory: pytest.TempPathFactory):
    """A and B signed in at once; A uploads while B idles, then B uploads its own. Returns the pages,
    B's capture, and each user's record."""
    folder = tmp_path_factory.mktemp("isolation")
    token = uuid.uuid4().hex[:8]
    a_file = lossy_mp4(folder, f"a-private-{token}.mp4", seconds=1.0)
    b_file = lossy_mp4(folder, f"b-own-{token}.mp4", seconds=1.5)
    a_ctx, a_page = new_page(browser)
    b_ctx, b_page = new_page(browser)
    a_capture, b_capture = BrowserCapture(), BrowserCapture()
    a_capture.attach(a_page)
    b_capture.attach(b_page)
    sign_in(a_page, cloud_app.url, cloud_support.USER_EMAIL, cloud_support.USER_PASSWORD)
    sign_in(b_page, cloud_app.url, cloud_support.SECOND_EMAIL, cloud_support.USER_PASSWORD)
    for page in (a_page, b_page):
        page.get_by_role("heading", name="Upload").first.wait_for()

    def b_idles() -> None:  # B's page, polled while A's upload runs
        b_capture.snapshot(b_page, "idle while A uploads")
        assert a_file.name not in b_page.inner_text("body")

    upload(a_page, a_file, on_tick=b_idles)
    b_capture.snapshot(b_page, "after A's upload")
    assert "Nothing added yet" in b_page.inner_text("body")  # B's Upload page is untouched
    upload(b_page, b_file)

    a_repo, a_uid = as_user(cloud, cloud_support.USER_EMAIL)
    b_repo, b_uid = as_user(cloud, cloud_support.SECOND_EMAIL)
    [a_record] = [r for r in a_repo.iter_all() if r.original_name == a_file.name]
    [b_record] = [r for r in b_repo.iter_all() if r.original_name == b_file.name]
    yield {"a_page": a_page, "b_page": b_page, "a_capture": a_capture, "b_capture": b_capture,
           "a_file": a_file, "b_file": b_file,
           "a_repo": a_repo, "a_uid": a_uid, "a_record": a_record, "b_repo": b_repo, "b_uid": b_uid,
           "b_record": b_record}
    a_ctx.close()
    b_ctx.close()


# --- in the browser ------------------------------------------------------------------------------------------


def test_each_sees_only_their_own(stored) -> None:
    a_text = my_files(stored["a_page"], stored["a_capture"])
    b_text = my_files(stored["b_page"], stored["b_capture"])
    assert "of 1 recordings" in a_text and "of 1 recordings" in b_text
    assert stored["a_file"].name in a_text and stored["b_file"].name not in a_text
    assert stored["b_file"].name in b_text and stored["a_file"].name not in b_text


def test_nothing_of_a_reached_b(stored, cloud_app) -> None:
    """A's file name, record id and user id never appear in B's HTML or in B's websocket frames
    (checked before B types any of them into an input, below)."""
    capture: BrowserCapture = stored["b_capture"]
    assert capture.frames and capture.html
    a_things = {"A's file name": stored["a_file"].name, "A's record id": stored["a_record"].id,
                "A's user id": stored["a_uid"]}
    assert capture.leaks(a_things) == []
    assert capture.tokens() == []
    assert "Traceback" not in cloud_app.log_text()


@pytest.mark.parametrize("typed", ["name", "record id", "user id", "key", "wildcard"])
def test_search_box_never_reaches_the_other_users_records(stored, typed: str) -> None:
    a_record: FileRecord = stored["a_record"]
    text = {"name": stored["a_file"].name, "record id": a_record.id, "user id": stored["a_uid"],
            "key": a_record.s3_key, "wildcard": "*"}[typed]
    body = my_files(stored["b_page"], stored["b_capture"], text)
    assert stored["a_file"].name not in body and a_record.id not in body
    if typed != "wildcard":
        assert "No recordings match these filters." in body


@pytest.mark.parametrize("query", ["id={a_id}", "record={a_id}&action=delete", "key={a_key}", "selected={a_id}"])
def test_url_query_parameters_do_not_open_the_other_users_records(stored, cloud_app, query: str) -> None:
    """A URL opens a new browser session: B's kept session (the cookie) signs it in as B, and it shows B's
    files only."""
    page = stored["b_page"]
    a_record: FileRecord = stored["a_record"]
    page.goto(f"{cloud_app.url}/files?{query.format(a_id=a_record.id, a_key=a_record.s3_key)}")
    page.get_by_role("heading", name="My files").first.wait_for()  # resumed as B, the deep link followed
    page.get_by_text(cloud_support.SECOND_EMAIL).first.wait_for()  # the sidebar: B, nobody else
    body = my_files(page, stored["b_capture"])
    assert "of 1 recordings" in body and stored["a_file"].name not in body
    assert a_record.id not in page.inner_text("body")  # (the frames echo the URL B typed)
    assert page.locator("video").count() == 0  # nothing was opened
    assert stored["a_repo"].get(a_record.id).status == a_record.status


# --- crafted ids and keys under the browser ------------------------------------------------------------------


def test_crafted_ids_and_keys_are_refused_and_nothing_changes(stored, cloud) -> None:
    settings, store = app_store(cloud)
    a_record: FileRecord = stored["a_record"]
    a_repo, b_repo, b_uid = stored["a_repo"], stored["b_repo"], stored["b_uid"]
    b_server = server_for(cloud, b_uid)
    before = Holdings.of(store, a_repo)
    refusals: list[PulseVaultError] = []

    def refused(expected, call) -> None:
        with pytest.raises(expected) as caught:
            call()
        refusals.append(caught.value)

    # A's record id through B's repository (RLS): it does not exist for B.
    refused(NotFound, lambda: b_repo.get(a_record.id))
    refused(NotFound, lambda: b_repo.update_research(a_record.id, ResearchFields(notes="mine now")))
    refused(NotFound, lambda: b_server.mark_failed(a_record.id, "hijacked"))
    refused(NotFound, lambda: b_server.set_analysis(a_record.id, {"hr_bpm": 1}))
    refused(NotFound, lambda: b_server.delete(a_record.id))
    refused(NotFound, lambda: library.reanalysis_task(store, b_repo, b_server, a_record.id))  # nothing signed
    assert b_repo.list(ListQuery(text=a_record.original_name)).total == 0
    assert b_repo.get_many([a_record.id]) == []
    trail = refused_trail(b_repo.user_id)  # every action below is refused before an entry is written
    report = library.delete_records(store, b_repo, b_server, [a_record.id], trail=trail)
    assert report.deleted == () and "does not exist" in report.failed[0].reason

    # Links for A's record id through B's session: re-read through B's repository, A's row does not exist.
    for make in (library.playback_url, library.download_url):
        refused(NotFound, lambda make=make: make(store, b_repo, a_record.id, trail=trail))
    refused(NotFound, lambda: library.share_link(store, b_repo, a_record.id, 600, settings, trail=trail))
    assert library.thumbnail_urls(store, b_repo, [a_record.id]) == {a_record.id: None}
    # A repository labelled with A's id but carrying B's JWT: row-level security still answers for B.
    mislabelled = SupabaseRepository(b_repo._client, stored["a_uid"])
    refused(NotFound, lambda: library.download_url(store, mislabelled, a_record.id, trail=trail))
    # B's server records and B's repository are one session; a mix with A's id is refused.
    mixed = library.delete_records(store, b_repo, server_for(cloud, stored["a_uid"]), [stored["b_record"].id],
                                   trail=trail)
    assert mixed.deleted == () and "another session" in mixed.failed[0].reason
    # Raw keys: A's, and B's prefix climbing into A's.
    climbing = f"{user_prefix(b_uid)}../{stored['a_uid']}/{a_record.s3_key.split('/', 2)[2]}"
    for key in (a_record.s3_key, climbing):
        refused(KeyOwnershipError, lambda key=key: store.presign_get(key, owner=b_uid))
        refused(KeyOwnershipError, lambda key=key: store.delete([key], owner=b_uid))
        refused(KeyOwnershipError, lambda key=key: store.head(key, owner=b_uid))
    refused(KeyOwnershipError, lambda: list(store.iter_objects(user_prefix(stored["a_uid"]), owner=b_uid)))
    refused(AccessDenied, lambda: reconcile(store, b_repo, stored["a_uid"], settings))
    # A row reserved for B pointing at A's key.
    refused(KeyOwnershipError, lambda: b_server.reserve(NewRecord(
        id=str(uuid.uuid4()), s3_key=a_record.s3_key, bucket=store.bucket, original_name="steal.mp4",
        content_type="video/mp4", size_bytes=1, research=ResearchFields()), quota_bytes=10**12))

    for exc in refusals:  # the messages never name A's id, user or key
        text = str(exc)
        assert a_record.id not in text and stored["a_uid"] not in text and "recordings/" not in text, text
    assert Holdings.of(store, a_repo) == before
    assert a_repo.get(a_record.id) == a_record
    assert [r.id for r in b_repo.iter_all()] == [stored["b_record"].id]
