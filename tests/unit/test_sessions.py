"""The server-side session store (demo SQLite) and the encryption of the tokens it keeps."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lib.auth import Session
from lib.sessions import (
    TICKET_TTL_S,
    ClientInfo,
    SqliteSessionStore,
    TokenCipher,
    describe_device,
)

KEY = "k" * 43
IDLE_S = 3_600
LIFETIME_S = 86_400
LAPTOP = ClientInfo("10.0.0.5", "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _session(user: str = "user-1", access: str = "access-A", refresh: str = "refresh-A") -> Session:
    return Session(user, f"{user}@lab.example", access, refresh, datetime(2026, 3, 1, 10, 0, tzinfo=UTC))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sessions.sqlite3"


@pytest.fixture
def store(db: Path, clock: Clock) -> SqliteSessionStore:
    return SqliteSessionStore(db, TokenCipher([KEY]), idle_timeout_s=IDLE_S, lifetime_s=LIFETIME_S, clock=clock)


def _signed_in(store: SqliteSessionStore, session: Session | None = None) -> tuple[str, str]:
    row_id, ticket = store.open(session or _session(), LAPTOP)
    secret = store.claim(ticket)
    assert secret is not None
    return row_id, secret


def test_cipher_round_trip_and_key_rotation() -> None:
    blob = TokenCipher([KEY]).encrypt(_session())
    assert "refresh-A" not in blob and "access-A" not in blob
    assert TokenCipher([KEY]).decrypt(blob) == ("access-A", "refresh-A")
    rotated = TokenCipher(["n" * 40, KEY])  # new key first, the old one still opens old blobs
    assert rotated.decrypt(blob) == ("access-A", "refresh-A")
    assert TokenCipher(["n" * 40]).decrypt(blob) is None
    assert TokenCipher([KEY]).decrypt(blob[:-4] + "AAAA") is None  # tampered


def test_cipher_needs_a_key() -> None:
    with pytest.raises(ValueError):
        TokenCipher([])


def test_ticket_gives_a_cookie_once_and_the_cookie_resumes(store: SqliteSessionStore) -> None:
    row_id, ticket = store.open(_session(), LAPTOP)
    secret = store.claim(ticket)
    assert secret is not None and len(secret) >= 40
    assert store.claim(ticket) is None  # single use
    resumed = store.resume(secret, LAPTOP)
    assert resumed is not None
    assert (resumed.stored.id, resumed.stored.user_id) == (row_id, "user-1")
    assert (resumed.access_token, resumed.refresh_token) == ("access-A", "refresh-A")
    assert resumed.stored.flagged == ""


def test_expired_ticket_is_refused(store: SqliteSessionStore, clock: Clock) -> None:
    _, ticket = store.open(_session(), LAPTOP)
    clock.advance(TICKET_TTL_S + 1)
    assert store.claim(ticket) is None


def test_nothing_secret_is_stored_in_the_clear(store: SqliteSessionStore, db: Path) -> None:
    _, secret = _signed_in(store)
    dump = "\n".join(sqlite3.connect(db).iterdump())
    for plain in (secret, "access-A", "refresh-A"):
        assert plain not in dump


def test_forged_revoked_idle_and_expired_cookies_are_refused_and_logged(
    store: SqliteSessionStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="lib.sessions")
    assert store.resume("forged", LAPTOP) is None
    assert "refused" in caplog.text

    row_id, secret = _signed_in(store)
    store.revoke("user-1", row_id)
    assert store.resume(secret, LAPTOP) is None
    assert not store.touch(row_id)

    _, secret = _signed_in(store)
    clock.advance(IDLE_S + 1)
    assert store.resume(secret, LAPTOP) is None

    row_id, secret = _signed_in(store)
    for _ in range(LIFETIME_S // (IDLE_S // 2)):  # active all along: the absolute lifetime still ends it
        clock.advance(IDLE_S // 2)
        store.touch(row_id)
    assert store.resume(secret, LAPTOP) is None


def test_use_keeps_an_idle_session_alive(store: SqliteSessionStore, clock: Clock) -> None:
    row_id, secret = _signed_in(store)
    clock.advance(IDLE_S - 10)
    assert store.touch(row_id)
    clock.advance(IDLE_S - 10)
    assert store.resume(secret, LAPTOP) is not None


def test_cookie_from_another_address_and_browser_is_flagged(
    store: SqliteSessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="lib.sessions")
    _, secret = _signed_in(store)
    resumed = store.resume(secret, ClientInfo("203.0.113.9", "curl/8.5"))
    assert resumed is not None
    assert "203.0.113.9" in resumed.stored.flagged and "another browser" in resumed.stored.flagged
    assert "flagged" in caplog.text
    assert "203.0.113.9" in store.list_for("user-1")[0].flagged


def test_rotated_tokens_are_what_the_next_tab_resumes_with(store: SqliteSessionStore) -> None:
    row_id, secret = _signed_in(store)
    store.save_tokens(row_id, _session(access="access-B", refresh="refresh-B"))
    resumed = store.resume(secret, LAPTOP)
    assert resumed is not None and resumed.refresh_token == "refresh-B"


def test_users_list_and_revoke_only_their_own(store: SqliteSessionStore) -> None:
    mine, _ = _signed_in(store)
    other_row, other_secret = _signed_in(store, _session(user="user-2"))
    assert [s.id for s in store.list_for("user-1")] == [mine]
    store.revoke("user-1", other_row)  # not theirs: nothing happens
    assert store.resume(other_secret, LAPTOP) is not None
    _signed_in(store)
    store.revoke_all("user-1")
    assert store.list_for("user-1") == []
    assert [s.id for s in store.list_for("user-2")] == [other_row]


def test_revoke_by_cookie_and_tokens_are_dropped(store: SqliteSessionStore, db: Path) -> None:
    row_id, secret = _signed_in(store)
    store.revoke_secret(secret)
    assert store.resume(secret, LAPTOP) is None
    assert sqlite3.connect(db).execute("select tokens from app_sessions where id = ?", (row_id,)).fetchone() == ("",)


def test_a_new_process_key_cannot_open_the_old_tokens(store: SqliteSessionStore, db: Path, clock: Clock) -> None:
    _, secret = _signed_in(store)
    restarted = SqliteSessionStore(db, TokenCipher.for_process(), idle_timeout_s=IDLE_S, lifetime_s=LIFETIME_S,
                                   clock=clock)
    assert restarted.resume(secret, LAPTOP) is None


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (LAPTOP.user_agent, "Chrome on Linux"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36 Edg/131.0", "Edge on Windows"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Version/17.5 Safari/605.1.15", "Safari on macOS"),
        ("curl/8.5 [click](http://evil.example)", "unknown browser"),
        ("", "unknown browser"),
    ],
)
def test_describe_device(user_agent: str, expected: str) -> None:
    assert describe_device(user_agent) == expected
