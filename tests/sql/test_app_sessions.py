"""Issue 19 in cloud mode: the sessions the server keeps, in ``public.app_sessions`` (sql/006) on a real
PostgreSQL, through the Supabase stand-in's PostgREST.

The store (lib.sessions.PostgrestSessionStore, the server's service-role client) is checked for what the
demo store is checked for in tests/unit/test_sessions.py, plus what only a database shared by restarts
and app processes has: a new store with the same key resumes, another key is refused cleanly. Row-level
security is checked the way an attacker would try it: their own JWT and the anon key, straight to
PostgREST.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import requests

from lib.auth import Session
from lib.repository import new_service_client
from lib.services import build_services
from lib.sessions import TICKET_TTL_S, ClientInfo, PostgrestSessionStore, TokenCipher
from lib.settings import S3Settings, Settings, SupabaseSettings
from tests.support.supabase.server import SupabaseStandin

KEY = "k" * 43
OTHER_KEY = "o" * 43
IDLE_S = 3_600
LIFETIME_S = 86_400
LAPTOP = ClientInfo("10.0.0.5", "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36")
VISIBLE_COLUMNS = "id,user_id,created_at,last_seen_at,expires_at,client_address,user_agent,flagged,revoked_at"


class Clock:
    """The app server's clock, moved by the test (the database compares the times the store sends)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Rest:
    """Raw PostgREST with the public anon key and a token of the caller's choosing (or none)."""

    def __init__(self, standin: SupabaseStandin, token: str | None) -> None:
        self.url = f"{standin.url}/rest/v1/app_sessions"
        self.headers = {"apikey": standin.anon_key, "Prefer": "return=representation"}
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"

    def get(self, **params: str) -> requests.Response:
        return requests.get(self.url, params=params, headers=self.headers, timeout=10)

    def patch(self, body: dict[str, Any], **params: str) -> requests.Response:
        return requests.patch(self.url, params=params, json=body, headers=self.headers, timeout=10)

    def post(self, body: dict[str, Any]) -> requests.Response:
        return requests.post(self.url, json=body, headers=self.headers, timeout=10)

    def delete(self, **params: str) -> requests.Response:
        return requests.delete(self.url, params=params, headers=self.headers, timeout=10)


def _denied(response: requests.Response) -> bool:
    return response.status_code in (401, 403) and response.json()["code"] == "42501"


def _session(user_id: str, access: str = "access-A", refresh: str = "refresh-A") -> Session:
    return Session(user_id, f"{user_id[:8]}@lab.test", access, refresh, datetime.now(UTC) + timedelta(hours=1))


def _store(standin: SupabaseStandin, clock: Clock, keys: tuple[str, ...] = (KEY,)) -> PostgrestSessionStore:
    """A store as build_services makes one: its own service-role client, the key(s) from settings."""
    settings = SupabaseSettings(url=standin.url, anon_key=standin.anon_key, service_role_key=standin.service_role_key)
    return PostgrestSessionStore(new_service_client(settings), TokenCipher(keys), idle_timeout_s=IDLE_S,
                                 lifetime_s=LIFETIME_S, clock=clock)


def _signed_in(store: PostgrestSessionStore, session: Session) -> tuple[str, str]:
    row_id, ticket = store.open(session, LAPTOP)
    secret = store.claim(ticket)
    assert secret is not None
    return row_id, secret


def _row(pg_dsn: str, row_id: str) -> dict[str, Any]:
    with psycopg.connect(pg_dsn) as conn:
        cursor = conn.execute("select * from public.app_sessions where id = %s", (row_id,))
        names = [c.name for c in cursor.description or ()]
        return dict(zip(names, cursor.fetchone() or (), strict=True))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def users(supabase_standin: SupabaseStandin) -> tuple[str, str]:
    """Two confirmed accounts: A (whose sessions the tests attack) and B (the attacker)."""
    return (supabase_standin.create_user(f"a-{uuid.uuid4().hex[:8]}@lab.test", "password-123"),
            supabase_standin.create_user(f"b-{uuid.uuid4().hex[:8]}@lab.test", "password-123"))


@pytest.fixture
def store(supabase_standin: SupabaseStandin, clock: Clock) -> PostgrestSessionStore:
    return _store(supabase_standin, clock)


# --- the store -----------------------------------------------------------------------------


def test_ticket_gives_a_cookie_once_and_the_cookie_resumes(store: PostgrestSessionStore, users) -> None:
    a, _ = users
    row_id, ticket = store.open(_session(a), LAPTOP)
    secret = store.claim(ticket)
    assert secret is not None and len(secret) >= 40
    assert store.claim(ticket) is None  # single use
    resumed = store.resume(secret, LAPTOP)
    assert resumed is not None
    assert (resumed.stored.id, resumed.stored.user_id) == (row_id, a)
    assert (resumed.access_token, resumed.refresh_token) == ("access-A", "refresh-A")
    assert resumed.stored.flagged == ""
    assert resumed.stored.expires_at - resumed.stored.created_at == timedelta(seconds=LIFETIME_S)


def test_expired_ticket_is_refused(store: PostgrestSessionStore, clock: Clock, users) -> None:
    _, ticket = store.open(_session(users[0]), LAPTOP)
    clock.advance(TICKET_TTL_S + 1)
    assert store.claim(ticket) is None


def test_only_hashes_and_ciphertext_are_stored(store: PostgrestSessionStore, users, pg_dsn: str) -> None:
    row_id, secret = _signed_in(store, _session(users[0]))
    row = _row(pg_dsn, row_id)
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    stored_text = repr(row)
    for plain in (secret, "access-A", "refresh-A"):
        assert plain not in stored_text


def test_forged_revoked_idle_and_expired_cookies_are_refused_and_logged(
    store: PostgrestSessionStore, clock: Clock, users, caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = users
    caplog.set_level(logging.WARNING, logger="lib.sessions")
    assert store.resume("forged", LAPTOP) is None
    assert "refused" in caplog.text

    row_id, secret = _signed_in(store, _session(a))
    store.revoke(a, row_id)
    assert store.resume(secret, LAPTOP) is None
    assert not store.touch(row_id)

    _, secret = _signed_in(store, _session(a))
    clock.advance(IDLE_S + 1)
    assert store.resume(secret, LAPTOP) is None

    row_id, secret = _signed_in(store, _session(a))
    for _ in range(LIFETIME_S // (IDLE_S // 2)):  # active all along: the absolute lifetime still ends it
        clock.advance(IDLE_S // 2)
        store.touch(row_id)
    assert store.resume(secret, LAPTOP) is None


def test_use_keeps_an_idle_session_alive(store: PostgrestSessionStore, clock: Clock, users) -> None:
    row_id, secret = _signed_in(store, _session(users[0]))
    clock.advance(IDLE_S - 10)
    assert store.touch(row_id)
    clock.advance(IDLE_S - 10)
    assert store.resume(secret, LAPTOP) is not None


def test_cookie_from_another_address_and_browser_is_flagged(
    store: PostgrestSessionStore, users, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="lib.sessions")
    _, secret = _signed_in(store, _session(users[0]))
    resumed = store.resume(secret, ClientInfo("203.0.113.9", "curl/8.5"))
    assert resumed is not None
    assert "203.0.113.9" in resumed.stored.flagged and "another browser" in resumed.stored.flagged
    assert "flagged" in caplog.text
    assert "203.0.113.9" in store.list_for(users[0])[0].flagged


def test_rotated_tokens_are_what_the_next_tab_resumes_with(store: PostgrestSessionStore, users) -> None:
    row_id, secret = _signed_in(store, _session(users[0]))
    store.save_tokens(row_id, _session(users[0], access="access-B", refresh="refresh-B"))
    resumed = store.resume(secret, LAPTOP)
    assert resumed is not None and resumed.refresh_token == "refresh-B"


def test_the_store_lists_and_revokes_only_the_named_users(store: PostgrestSessionStore, users) -> None:
    a, b = users
    mine, _ = _signed_in(store, _session(a))
    other_row, other_secret = _signed_in(store, _session(b))
    assert [s.id for s in store.list_for(a)] == [mine]
    store.revoke(a, other_row)  # not A's: nothing happens
    assert store.resume(other_secret, LAPTOP) is not None
    _signed_in(store, _session(a))
    store.revoke_all(a)
    assert store.list_for(a) == []
    assert [s.id for s in store.list_for(b)] == [other_row]


def test_revoke_by_cookie_drops_the_tokens(store: PostgrestSessionStore, users, pg_dsn: str) -> None:
    row_id, secret = _signed_in(store, _session(users[0]))
    store.revoke_secret(secret)
    assert store.resume(secret, LAPTOP) is None
    row = _row(pg_dsn, row_id)
    assert (row["tokens"], row["secret_hash"]) == ("", None) and row["revoked_at"] is not None


# --- an app restart, another app process, another key ---------------------------------------


def test_a_restarted_app_with_the_same_key_resumes(supabase_standin: SupabaseStandin, store, clock, users) -> None:
    row_id, secret = _signed_in(store, _session(users[0]))
    restarted = _store(supabase_standin, clock)  # a new process: new client, new store, the key from settings
    resumed = restarted.resume(secret, LAPTOP)
    assert resumed is not None and resumed.stored.id == row_id and resumed.refresh_token == "refresh-A"
    rotated = _store(supabase_standin, clock, keys=(OTHER_KEY, KEY))  # a new key first, the old one still opens
    assert rotated.resume(secret, LAPTOP) is not None


def test_another_key_is_refused_cleanly(supabase_standin: SupabaseStandin, store, clock, users,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="lib.sessions")
    _, secret = _signed_in(store, _session(users[0]))
    assert _store(supabase_standin, clock, keys=(OTHER_KEY,)).resume(secret, LAPTOP) is None
    assert "could not be decrypted" in caplog.text
    assert "access-A" not in caplog.text and secret not in caplog.text
    assert store.resume(secret, LAPTOP) is not None  # the right key still works: nothing was destroyed


# --- row-level security, from a user's own token ----------------------------------------------


@pytest.fixture
def a_session(store: PostgrestSessionStore, users) -> tuple[str, str]:
    """A's live session (row id, cookie secret)."""
    return _signed_in(store, _session(users[0]))


def test_another_user_cannot_see_revoke_or_take_my_session(supabase_standin, store, users, a_session) -> None:
    a, b = users
    row_id, secret = a_session
    bob = Rest(supabase_standin, supabase_standin.access_token_for(b))
    seen = bob.get(select="id")
    assert seen.status_code == 200 and seen.json() == []
    revoked = bob.patch({"revoked_at": datetime.now(UTC).isoformat()}, id=f"eq.{row_id}", select="id")
    assert revoked.status_code == 200 and revoked.json() == []
    assert _denied(bob.delete(id=f"eq.{row_id}"))
    # Nor plant a session of their own (or A's) that a cookie they chose would resume.
    planted = {"id": str(uuid.uuid4()), "user_id": b, "secret_hash": hashlib.sha256(b"chosen").hexdigest(),
               "tokens": "x", "created_at": "2026-01-01T00:00:00Z", "last_seen_at": "2026-01-01T00:00:00Z",
               "expires_at": "2999-01-01T00:00:00Z"}
    assert _denied(bob.post(planted))
    assert _denied(bob.post({**planted, "user_id": a}))
    assert _denied(bob.get(select="secret_hash"))
    assert store.resume(secret, LAPTOP) is not None  # A's session is untouched


def test_my_own_token_sees_my_sessions_but_never_the_secrets(supabase_standin, store, users, a_session) -> None:
    a, b = users
    row_id, _ = a_session
    _signed_in(store, _session(b))
    alice = Rest(supabase_standin, supabase_standin.access_token_for(a))
    listed = alice.get(select=VISIBLE_COLUMNS)
    assert listed.status_code == 200, listed.text
    assert [(r["id"], r["user_id"]) for r in listed.json()] == [(row_id, a)]
    for column in ("tokens", "secret_hash", "ticket_hash", "*"):
        assert _denied(alice.get(select=column, id=f"eq.{row_id}")), column
    for change in ({"tokens": ""}, {"flagged": ""}, {"expires_at": "2999-01-01T00:00:00Z"}, {"user_id": b}):
        assert _denied(alice.patch(change, id=f"eq.{row_id}")), change
    assert _denied(alice.delete(id=f"eq.{row_id}"))


def test_my_own_token_revokes_my_session_for_good(supabase_standin, store, users, a_session, pg_dsn) -> None:
    a, _ = users
    row_id, secret = a_session
    alice = Rest(supabase_standin, supabase_standin.access_token_for(a))
    revoked = alice.patch({"revoked_at": "2999-01-01T00:00:00Z"}, id=f"eq.{row_id}", select="id,revoked_at")
    assert revoked.status_code == 200 and [r["id"] for r in revoked.json()] == [row_id]
    row = _row(pg_dsn, row_id)
    assert row["revoked_at"] <= datetime.now(UTC) + timedelta(minutes=1)  # dated by the database
    assert (row["tokens"], row["secret_hash"]) == ("", None)  # nothing left to steal
    assert store.resume(secret, LAPTOP) is None
    again = alice.patch({"revoked_at": None}, id=f"eq.{row_id}", select="id")  # no way back
    assert again.status_code == 200 and again.json() == []
    assert _row(pg_dsn, row_id)["revoked_at"] is not None


def test_the_anon_key_alone_reads_nothing(supabase_standin, a_session) -> None:
    assert _denied(Rest(supabase_standin, None).get(select="id"))


# --- what build_services makes of the settings ------------------------------------------------


def _cloud_settings(standin: SupabaseStandin, keys: tuple[str, ...]) -> Settings:
    s3 = S3Settings(bucket="lab", region="us-east-1", access_key_id="AKIAUNUSED", secret_access_key="unused",
                    endpoint_url="http://127.0.0.1:9")  # never contacted here
    supabase = SupabaseSettings(url=standin.url, anon_key=standin.anon_key, service_role_key=standin.service_role_key)
    return Settings(mode="cloud", s3=s3, supabase=supabase, session_keys=keys, session_idle_timeout_s=IDLE_S,
                    session_lifetime_s=LIFETIME_S)


def test_cloud_mode_keeps_sessions_in_the_database_with_a_key(supabase_standin: SupabaseStandin, users) -> None:
    services = build_services(_cloud_settings(supabase_standin, (KEY,)))
    assert isinstance(services.sessions, PostgrestSessionStore)
    assert services.sessions.lifetime_s == LIFETIME_S
    row_id, secret = _signed_in(services.sessions, _session(users[0]))
    again = build_services(_cloud_settings(supabase_standin, (KEY,)))  # the next process of the lab
    assert again.sessions is not None
    resumed = again.sessions.resume(secret, LAPTOP)
    assert resumed is not None and resumed.stored.id == row_id


def test_cloud_mode_without_a_key_keeps_none_and_says_how(supabase_standin: SupabaseStandin,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="lib.services")
    services = build_services(_cloud_settings(supabase_standin, ()))
    assert services.sessions is None
    assert "session_key" in caplog.text and "PULSEVAULT_SESSION_KEY" in caplog.text and "sql/006" in caplog.text
