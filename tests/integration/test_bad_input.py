"""Issue 10's bad-input suite, at the library level (fast): upload, research fields, search, share
expiry and sign-in. Every case asserts a clear message (or the documented safe outcome), and every
case that touches storage ends by reconciling the user's prefix with their rows: no orphan object
and no ``ready`` row without its object.

Page-level versions of the same inputs (what a browser can send) are in
tests/app/test_bad_input_pages.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from supabase import create_client

from lib import library, pipeline
from lib.auth import ADMIN_ROLE, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, DemoAuth, SupabaseAuth
from lib.errors import (
    AccountExists,
    DuplicateRecording,
    FileTooLarge,
    InvalidCredentials,
    PulseVaultError,
    QuotaExceeded,
    UnsupportedMedia,
    ValidationError,
)
from lib.keys import MAX_FILENAME_LENGTH, user_prefix
from lib.pipeline import Backends
from lib.records import Consent, ListQuery, ResearchFields, Status
from lib.repository import Repository, ServerRecords
from lib.settings import MAX_PRESIGN_EXPIRY_S, MIB, MIN_PRESIGN_EXPIRY_S, Settings
from lib.storage import ObjectStore
from lib.throttle import FREE_ADDRESS_FAILURES, FREE_FAILURES, SignInThrottled
from tests.support import videos
from tests.support.audit import trail_of
from tests.support.journey import Holdings, assert_consistent, object_keys
from tests.support.records import sqlite_rows, supabase_rows

PASSWORD = "correct-horse-9"


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad-input")
    mjpg = videos.opencv_video(folder, "mjpg", frames=20)
    assert mjpg is not None
    h264 = videos.h264_mp4(folder / "h264.mp4", seconds=0.5)
    jpeg = folder / "photo.mp4"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 2000)
    return {
        "mjpg": mjpg,
        "h264": h264,
        "zero": videos.zero_byte(folder / "zero.mp4"),
        "text": videos.text_file(folder / "notes.mp4"),
        "jpeg": jpeg,
        "truncated": videos.truncated_copy(h264, folder / "truncated.mp4"),
        "broken_index": videos.avi_with_broken_index(mjpg, folder / "broken_index.avi"),
        "no_index": videos.avi_without_index(mjpg, folder / "no_index.avi"),
    }


@dataclass(frozen=True)
class World:
    settings: Settings
    store: ObjectStore
    repo: Repository
    server: ServerRecords

    def process(self, path: Path, name: str, research: ResearchFields | None = None):
        return pipeline.process_upload(path, name, research or ResearchFields(),
                                       Backends(self.settings, self.store, self.repo, self.server), analyse=False)


@pytest.fixture
def world(s3_settings, tmp_path: Path) -> Iterator[World]:
    """A fresh user on SQLite and SeaweedFS; reconciled after the case."""
    settings = Settings(mode="cloud", s3=s3_settings, max_upload_bytes=20 * MIB, quota_bytes=100 * MIB)
    rows = sqlite_rows(tmp_path / "m.db")
    w = World(settings, ObjectStore.from_settings(settings), rows.repo, rows.server)
    yield w
    assert_consistent(w.store, w.repo, w.settings)


@pytest.fixture(params=["sqlite", "supabase"])
def any_world(request: pytest.FixtureRequest, s3_settings, tmp_path: Path) -> Iterator[World]:
    """The same, on SQLite and on Supabase (the stand-in, real RLS)."""
    settings = Settings(mode="cloud", s3=s3_settings, max_upload_bytes=20 * MIB, quota_bytes=100 * MIB)
    store = ObjectStore.from_settings(settings)
    if request.param == "sqlite":
        rows = sqlite_rows(tmp_path / "m.db")
    else:
        rows = supabase_rows(request.getfixturevalue("supabase_standin"))
    w = World(settings, store, rows.repo, rows.server)
    yield w
    assert_consistent(w.store, w.repo, w.settings)


def assert_clear(exc: BaseException, *words: str) -> None:
    """A researcher-readable message: says what is wrong, no traceback, no paths, no keys."""
    text = str(exc)
    assert isinstance(exc, PulseVaultError), type(exc)
    for word in words:
        assert word.lower() in text.lower(), (word, text)
    assert "Traceback" not in text and "/tmp" not in text and "recordings/" not in text, text


def assert_nothing_stored(w: World) -> None:
    assert object_keys(w.store, w.repo.user_id) == set()
    assert list(w.repo.iter_all()) == []


# --- upload: files that cannot be accepted (10 cases) ------------------------------------------------------


@pytest.mark.parametrize(
    ("clip", "name", "error", "words"),
    [
        pytest.param("zero", "empty.mp4", UnsupportedMedia, ["empty", "0 bytes"], id="zero-byte"),
        pytest.param("text", "notes.mp4", UnsupportedMedia, ["notes.mp4", "not an MP4"], id="text-as-mp4"),
        pytest.param("jpeg", "photo.mp4", UnsupportedMedia, ["photo.mp4", "not an MP4"], id="jpeg-as-mp4"),
        pytest.param("truncated", "cut.mp4", UnsupportedMedia, ["cut.mp4", "truncated"], id="truncated-mp4"),
        pytest.param("broken_index", "broken.avi", UnsupportedMedia, ["broken.avi", "index"], id="broken-index"),
        pytest.param("no_index", "stopped.avi", UnsupportedMedia, ["stopped.avi", "index"], id="missing-index"),
        pytest.param("h264", "clip.avi", UnsupportedMedia, ["not an AVI", "Rename it to .mp4"],
                     id="mp4-named-avi"),
        pytest.param("h264", "clip.wmv", UnsupportedMedia, [".wmv files are not accepted"], id="wmv-extension"),
        pytest.param("h264", "clip.exe", UnsupportedMedia, [".exe files are not accepted"], id="exe-extension"),
        pytest.param("h264", "clip", UnsupportedMedia, ["no file extension"], id="no-extension"),
    ],
)
def test_unacceptable_file_is_refused_and_nothing_is_stored(world: World, clips, clip, name, error, words):
    with pytest.raises(error) as caught:
        world.process(clips[clip], name)
    assert_clear(caught.value, *words)
    assert_nothing_stored(world)


def test_file_over_the_size_limit(world: World, clips) -> None:
    small = replace(world, settings=replace(world.settings, max_upload_bytes=1024))
    with pytest.raises(FileTooLarge) as caught:
        small.process(clips["mjpg"], "big.avi")
    assert_clear(caught.value, "big.avi", "over the 1.0 KiB upload limit")
    assert_nothing_stored(world)


def test_file_over_the_quota(world: World, clips) -> None:
    tight = replace(world, settings=replace(world.settings, quota_bytes=clips["mjpg"].stat().st_size - 1))
    with pytest.raises(QuotaExceeded) as caught:
        tight.process(clips["mjpg"], "a.avi")
    assert_clear(caught.value, "a.avi", "quota")
    assert_nothing_stored(world)


def test_local_copy_changed_after_the_check(world: World, clips, tmp_path: Path) -> None:
    copy = tmp_path / "copy.avi"
    copy.write_bytes(clips["mjpg"].read_bytes())
    prepared = pipeline.check_recording(copy, "copy.avi", max_bytes=world.settings.max_upload_bytes,
                                        workdir=tmp_path / "w", analyse=False)
    with copy.open("ab") as fh:
        fh.write(b"appended after the check")
    with pytest.raises(ValidationError) as caught:
        pipeline.store_recording(prepared, ResearchFields(),
                                 Backends(world.settings, world.store, world.repo, world.server))
    assert_clear(caught.value, "copy.avi", "changed or disappeared")
    assert_nothing_stored(world)


def test_same_file_twice_is_a_duplicate(any_world: World, clips) -> None:
    first = any_world.process(clips["mjpg"], "take 1.avi")
    before = Holdings.of(any_world.store, any_world.repo)
    with pytest.raises(DuplicateRecording) as caught:
        any_world.process(clips["mjpg"], "take 1 again.avi")
    assert_clear(caught.value, "take 1 again.avi", "already stored as take 1.avi")
    assert caught.value.existing_id == first.id
    assert Holdings.of(any_world.store, any_world.repo) == before


# --- upload: hostile names are stored sanitised, never reach a key (7 cases) -----------------------------


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        pytest.param("../../etc/passwd.avi", "passwd.avi", id="dot-dot"),
        pytest.param("C:\\lab\\S07\\rest.avi", "rest.avi", id="windows-path"),
        pytest.param("day1/sub/rest.avi", "rest.avi", id="folder-path"),
        pytest.param("rest\x00ing.avi", "resting.avi", id="nul"),
        pytest.param("x" * 300 + ".avi", "x" * (MAX_FILENAME_LENGTH - 4) + ".avi", id="300-chars"),
        pytest.param("\x01\x02\u200b.avi", "recording.avi", id="nothing-printable"),
        pytest.param("evil\u202eiva.avi", "eviliva.avi", id="bidi-override"),
        pytest.param('a<b>:"c"|?*.AVI', "a_b___c____.avi", id="windows-reserved"),
    ],
)
def test_hostile_name_is_sanitised(world: World, clips, name: str, stored: str) -> None:
    record = world.process(clips["mjpg"], name)
    assert record.status is Status.READY
    assert record.original_name == stored
    for key in object_keys(world.store, world.repo.user_id):
        assert key.startswith(user_prefix(world.repo.user_id)) and ".." not in key
        assert key.rsplit("/", 1)[1] in {"original.avi", "thumb.jpg", "preview.mp4"}


# --- research fields (7 cases) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "research",
    [
        pytest.param(ResearchFields(notes="n" * 100_000), id="very-long-notes"),
        pytest.param(ResearchFields(subject_id="S\u00e9bastien-07", notes="pulse \U0001fac0 ok \U0001f600",
                                    tags=("\U0001f3c3", "ra\u00efn")), id="emoji-and-accents"),
        pytest.param(ResearchFields(subject_id="'; drop table user_files; --", session_label="1' or '1'='1",
                                    notes="\"); delete from auth.users; --", tags=("' or 1=1",)), id="sql-ish"),
        pytest.param(ResearchFields(notes="tab\there\nnew line\r\nbell\x07 esc\x1b[31m"), id="control-chars"),
        pytest.param(ResearchFields(session_label="<script>alert(1)</script>",
                                    notes="**bold** [link](javascript:alert(1))"), id="markup"),
    ],
)
def test_research_fields_round_trip(any_world: World, clips, research: ResearchFields) -> None:
    record = any_world.process(clips["mjpg"], "fields.avi", research)
    again = any_world.repo.get(record.id)
    assert again.research == research
    assert any_world.repo.list(ListQuery()).total == 1  # the table is still there


def test_tag_list_with_commas_blanks_and_duplicates(any_world: World, clips) -> None:
    from components.research_form import parse_tags  # the pages' parser; no Streamlit call runs

    tags = parse_tags(" rest, rest ,, daylight ,glasses,daylight, ")
    assert tags == ("rest", "daylight", "glasses")
    record = any_world.process(clips["mjpg"], "tags.avi",
                               ResearchFields(tags=("a,b", "a,b", " spaced ", "", "x")))
    assert any_world.repo.get(record.id).research.tags == ("a,b", "spaced", "x")


def test_nul_in_notes_is_stored_or_clearly_refused(any_world: World, clips) -> None:
    try:
        record = any_world.process(clips["mjpg"], "nul.avi", ResearchFields(notes="before\x00after"))
    except PulseVaultError as exc:
        assert_clear(exc, "notes")
        assert_nothing_stored(any_world)
        return
    assert any_world.repo.get(record.id).research.notes in {"before\x00after", "beforeafter"}


# --- search (11 cases) ---------------------------------------------------------------------------------------

SEARCH_NAMES = ("100% rest.avi", "rest_1.avi", "rest-2.avi", "it's.avi", 'say "hi".avi', "back\\slash.avi",
                "plain.avi")


@pytest.fixture
def searchable(any_world: World, clips) -> World:
    """Rows with awkward names (metadata only: search reads rows, not objects)."""
    from lib.keys import new_record_id, record_keys
    from lib.records import NewRecord

    for name in SEARCH_NAMES:
        record_id = new_record_id()
        keys = record_keys(any_world.repo.user_id, record_id, "avi", datetime.now(UTC))
        any_world.server.reserve(NewRecord(id=record_id, s3_key=keys.original, bucket=any_world.store.bucket,
                                           original_name=name, content_type="video/x-msvideo", size_bytes=1,
                                           research=ResearchFields()), quota_bytes=any_world.settings.quota_bytes)
    return any_world


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("%", {"100% rest.avi"}, id="percent-is-literal"),
        pytest.param("_", {"rest_1.avi"}, id="underscore-is-literal"),
        pytest.param("rest*avi", {"100% rest.avi", "rest_1.avi", "rest-2.avi"}, id="star-is-a-wildcard"),
        pytest.param("'", {"it's.avi"}, id="single-quote"),
        pytest.param('"', {'say "hi".avi'}, id="double-quote"),
        pytest.param("\\", {"back\\slash.avi"}, id="backslash"),
        pytest.param("' or 1=1 --", set(), id="sql-injection"),
        pytest.param("x') or ('1'='1", set(), id="sql-injection-parens"),
        pytest.param('"),id.neq.0,original_name.ilike.*', set(), id="postgrest-injection"),
        pytest.param("r" * 5_000, set(), id="very-long"),
        pytest.param("   ", set(SEARCH_NAMES), id="blank-is-no-filter"),
    ],
)
def test_search_treats_input_as_text(searchable: World, text: str, expected: set[str]) -> None:
    page = searchable.repo.list(ListQuery(text=text))
    assert {r.original_name for r in page.records} == expected
    assert page.total == len(expected)


def test_nul_in_search_is_ignored_alike_in_both_stores(searchable: World) -> None:
    # PostgreSQL text cannot hold NUL, so both repositories drop it from the search.
    plain = searchable.repo.list(ListQuery(text="rest")).total
    assert plain > 0
    assert searchable.repo.list(ListQuery(text="rest\x00")).total == plain


# --- share expiry (9 cases) ----------------------------------------------------------------------------------


@pytest.fixture
def stored(world: World, clips):
    record = world.process(clips["mjpg"], "share me.avi")
    return world.repo.set_consent(record.id, Consent.SHAREABLE, None)


@pytest.mark.parametrize(
    ("asked", "granted"),
    [
        pytest.param(0, MIN_PRESIGN_EXPIRY_S, id="zero"),
        pytest.param(-3600, MIN_PRESIGN_EXPIRY_S, id="negative"),
        pytest.param(59.9, MIN_PRESIGN_EXPIRY_S, id="below-min"),
        pytest.param(10**12, MAX_PRESIGN_EXPIRY_S, id="above-max"),
        pytest.param(float("inf"), MAX_PRESIGN_EXPIRY_S, id="infinite"),
        pytest.param(None, 3_600, id="default"),
    ],
)
def test_share_expiry_is_clamped(world: World, stored, asked, granted) -> None:
    link = library.share_link(world.store, world.repo, stored.id, asked, world.settings, trail=trail_of(world.repo))
    assert link.expires_s == granted
    assert f"X-Amz-Expires={granted}" in link.url


@pytest.mark.parametrize("asked", ["an hour", float("nan"), object()], ids=["words", "nan", "object"])
def test_share_expiry_that_is_not_a_number(world: World, stored, asked) -> None:
    with pytest.raises(ValidationError) as caught:
        library.share_link(world.store, world.repo, stored.id, asked, world.settings, trail=trail_of(world.repo))
    assert_clear(caught.value, "expiry")


def test_share_link_of_a_failed_upload_is_refused(world: World, stored) -> None:
    failed = world.server.mark_failed(stored.id, "testing")
    world.store.delete([stored.s3_key, stored.thumbnail_key, stored.preview_key], owner=world.repo.user_id)
    with pytest.raises(ValidationError) as caught:
        library.share_link(world.store, world.repo, failed.id, 600, world.settings, trail=trail_of(world.repo))
    assert_clear(caught.value, "Only a stored (ready) recording")


# --- sign-in and sign-up (12 cases, each on demo auth and on Supabase) --------------------------------------


@pytest.fixture(params=["demo", "supabase"])
def auth(request: pytest.FixtureRequest, tmp_path: Path):
    """(provider, a registered e-mail) on DemoAuth and on SupabaseAuth against the stand-in."""
    email = f"known-{uuid.uuid4().hex[:6]}@lab.test"
    if request.param == "demo":
        provider = DemoAuth(tmp_path / "auth.db")
        provider.ensure_account(email, PASSWORD)
        return provider, email
    standin = request.getfixturevalue("supabase_standin")
    standin.create_user(email, PASSWORD)
    return SupabaseAuth(create_client(standin.url, standin.anon_key)), email


@pytest.mark.parametrize(
    ("email", "password", "error", "words"),
    [
        pytest.param("", PASSWORD, ValidationError, ["Enter your e-mail address"], id="empty-email"),
        pytest.param("   ", PASSWORD, ValidationError, ["Enter your e-mail address"], id="blank-email"),
        pytest.param("{known}", "", ValidationError, ["Enter your password"], id="empty-password"),
        pytest.param("not-an-email", PASSWORD, ValidationError, ["doesn't look like an e-mail"], id="malformed"),
        pytest.param("two@@lab.test", PASSWORD, ValidationError, ["doesn't look like an e-mail"], id="double-at"),
        pytest.param("a" * 250 + "@lab.test", PASSWORD, ValidationError, ["doesn't look like an e-mail"],
                     id="too-long-email"),
        pytest.param("{known}", "wrong-password", InvalidCredentials, ["password"], id="wrong-password"),
        pytest.param("nobody@lab.test", PASSWORD, InvalidCredentials, ["password"], id="unknown-user"),
        pytest.param("{known}", "p" * 100_000, InvalidCredentials, ["password"], id="very-long-password"),
        pytest.param("{known}", "pässwörd-\U0001f511", InvalidCredentials, ["password"], id="unicode-password"),
        pytest.param("ünïcode@lab.test", PASSWORD, InvalidCredentials, ["password"], id="unicode-email"),
    ],
)
def test_sign_in_refusals_are_clear(auth, email: str, password: str, error, words) -> None:
    provider, known = auth
    with pytest.raises(error) as caught:
        provider.sign_in(email.replace("{known}", known), password)
    assert_clear(caught.value, *words)
    assert PASSWORD not in str(caught.value) and known not in str(caught.value)


@pytest.mark.parametrize("email", ["{known}\x00", "\x00{known}", "{known}\x07"], ids=["nul-end", "nul-start", "bell"])
def test_control_characters_in_email(auth, email: str) -> None:
    provider, known = auth
    with pytest.raises((ValidationError, InvalidCredentials)) as caught:
        provider.sign_in(email.replace("{known}", known), PASSWORD)
    assert_clear(caught.value)


def test_wrong_password_and_unknown_user_read_the_same(auth) -> None:
    """No account enumeration: the two refusals are word for word the same."""
    provider, known = auth
    with pytest.raises(InvalidCredentials) as wrong:
        provider.sign_in(known, "wrong-password")
    with pytest.raises(InvalidCredentials) as unknown:
        provider.sign_in("nobody@lab.test", "wrong-password")
    assert str(wrong.value) == str(unknown.value)


@pytest.mark.parametrize(
    ("password", "error", "words"),
    [
        pytest.param("short", ValidationError, [f"at least {MIN_PASSWORD_LENGTH} characters"], id="too-short"),
        pytest.param("p" * (MAX_PASSWORD_LENGTH + 1), ValidationError, [f"at most {MAX_PASSWORD_LENGTH}"],
                     id="too-long"),
    ],
)
def test_sign_up_password_policy(auth, password: str, error, words) -> None:
    provider, _known = auth
    with pytest.raises(error) as caught:
        provider.sign_up(f"new-{uuid.uuid4().hex[:6]}@lab.test", password)
    assert_clear(caught.value, *words)


def test_sign_up_twice_and_unicode_password(auth) -> None:
    provider, known = auth
    with pytest.raises(AccountExists) as caught:
        provider.sign_up(known.upper(), PASSWORD)
    assert_clear(caught.value, "already exists")
    email, password = f"uni-{uuid.uuid4().hex[:6]}@lab.test", "pässwörd-\U0001f511-long"
    assert provider.sign_up(email, password).session is not None
    assert provider.sign_in(f"  {email.upper()} ", password).email == email


# --- sign-in throttling and administrators (issue 14, attacks 4 and 6; each on demo auth and Supabase) -------


def test_wrong_passwords_are_throttled_and_then_even_the_right_one_waits(auth) -> None:
    """Fifty wrong passwords no longer run back to back: after five the sixth waits, and so does the right one."""
    provider, known = auth
    for _ in range(FREE_FAILURES):
        with pytest.raises(InvalidCredentials):
            provider.sign_in(known, "wrong-password", client_address="198.51.100.20")
    started = time.monotonic()
    refused = 0
    for _ in range(45):
        with pytest.raises((InvalidCredentials, SignInThrottled)) as caught:
            provider.sign_in(known, "wrong-password", client_address="198.51.100.20")
        refused += isinstance(caught.value, SignInThrottled)
    assert refused >= 40 and time.monotonic() - started < 30
    with pytest.raises(SignInThrottled) as caught:
        provider.sign_in(known, PASSWORD, client_address="198.51.100.20")
    assert_clear(caught.value, "Too many failed sign-ins", "UTC), then try again")


def test_one_address_guessing_many_accounts_is_throttled(auth) -> None:
    provider, _known = auth
    for i in range(FREE_ADDRESS_FAILURES):
        with pytest.raises(InvalidCredentials):
            provider.sign_in(f"guess{i}@lab.test", "wrong-password", client_address="203.0.113.99")
    with pytest.raises(SignInThrottled) as caught:
        provider.sign_in("another@lab.test", "wrong-password", client_address="203.0.113.99")
    assert_clear(caught.value, "your network address")


def test_admin_by_sign_up_is_impossible(auth, request: pytest.FixtureRequest) -> None:
    """Signing up with an address that reads like an admin's, or (Supabase) with user_metadata claiming
    the admin role, gives a researcher: the role is app_metadata, which only the service role writes."""
    provider, _known = auth
    email = f"ADMIN-{uuid.uuid4().hex[:6]}@lab.test"
    signed_up = provider.sign_up(email, PASSWORD).session
    assert signed_up is not None and not signed_up.is_admin
    assert not provider.sign_in(email, PASSWORD).is_admin
    if isinstance(provider, SupabaseAuth):
        standin = request.getfixturevalue("supabase_standin")
        claimed = f"claims-admin-{uuid.uuid4().hex[:6]}@lab.test"
        raw = create_client(standin.url, standin.anon_key)  # what an attacker's own script sends
        raw.auth.sign_up({"email": claimed, "password": PASSWORD, "options": {"data": {"role": "admin"}}})
        assert raw.auth.get_user().user.user_metadata["role"] == "admin"
        assert not SupabaseAuth(create_client(standin.url, standin.anon_key)).sign_in(claimed, PASSWORD).is_admin


def test_the_admin_role_is_the_servers_to_give(auth, request: pytest.FixtureRequest) -> None:
    provider, known = auth
    assert not provider.sign_in(known, PASSWORD).is_admin
    if isinstance(provider, DemoAuth):
        provider.ensure_account(known, PASSWORD, role=ADMIN_ROLE)  # the server seeding accounts
    else:  # what the README tells an operator to run in the SQL editor
        standin = request.getfixturevalue("supabase_standin")
        with psycopg.connect(standin.pg_dsn, autocommit=True) as conn:
            conn.execute("update auth.users set raw_app_meta_data = raw_app_meta_data || '{\"role\": \"admin\"}' "
                         "where email = %s", (known,))
    session = provider.sign_in(known, PASSWORD)
    assert session.is_admin and session.caller.is_admin
    assert provider.refresh(session).is_admin
