"""SupabaseAuth over HTTP: supabase-py 2.34 against the Supabase stand-in.

The stand-in answers GoTrue with HS256 JWTs and PostgREST on a real
PostgreSQL with sql/ applied, so "the client now runs as the user" is checked
by what the database lets that client read, not only by a header value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from postgrest.exceptions import APIError
from supabase import Client

import tests.conftest as _conftest
from lib.auth import (
    MSG_ACCOUNT_EXISTS,
    MSG_EMAIL_RATE_LIMITED,
    MSG_INVALID_CREDENTIALS,
    MSG_RATE_LIMITED,
    MSG_UNAVAILABLE,
    AuthProvider,
    Session,
    SupabaseAuth,
    new_supabase_client,
)
from lib.errors import (
    AccountExists,
    AuthUnavailable,
    EmailNotConfirmed,
    InvalidCredentials,
    RateLimited,
    SessionExpired,
    ValidationError,
)
from lib.settings import SupabaseSettings
from tests.support.services import free_port

# The stand-in's fixtures, unless tests/conftest.py already provides them (a
# second definition here would start a second PostgreSQL cluster).
if not hasattr(_conftest, "pg_dsn"):
    from tests.support.postgres import pg_dsn  # noqa: F401
if not hasattr(_conftest, "supabase_standin"):
    from tests.support.supabase.fixtures import supabase_standin, supabase_standin_server  # noqa: F401

MakeClient = Callable[[], Client]

EMAIL = "ada@lab.example"
PASSWORD = "correct horse"


@pytest.fixture
def new_client(supabase_standin) -> Iterator[MakeClient]:
    """Makes clients the way the app does, one per browser session; closes them after the test."""
    made: list[Client] = []

    def make() -> Client:
        made.append(new_supabase_client(_settings(supabase_standin)))
        return made[-1]

    yield make
    for client in made:
        client.options.httpx_client.close()


@pytest.fixture
def client(new_client: MakeClient) -> Client:
    return new_client()


@pytest.fixture
def offline() -> Iterator[SupabaseAuth]:
    """A client pointed at a closed port on 127.0.0.1 (connection refused)."""
    client = new_supabase_client(SupabaseSettings(url=f"http://127.0.0.1:{free_port()}", anon_key="anon"))
    yield SupabaseAuth(client)
    client.options.httpx_client.close()


@pytest.fixture
def auth(client: Client) -> SupabaseAuth:
    return SupabaseAuth(client)


@pytest.fixture
def user_id(supabase_standin) -> str:
    return supabase_standin.create_user(EMAIL, PASSWORD)


def _settings(standin) -> SupabaseSettings:
    return SupabaseSettings(url=standin.url, anon_key=standin.anon_key)


def _bearer(client: Client) -> str:
    """The Authorization header the client's PostgREST requests carry."""
    return client.postgrest.headers["Authorization"]


def _reads_user_files(client: Client) -> bool:
    """Whether the database lets this client read user_files (anon has no grant)."""
    try:
        client.table("user_files").select("id").execute()
    except APIError:
        return False
    return True


def _expect_runs_as(client: Client, session: Session, standin) -> None:
    assert _bearer(client) == f"Bearer {session.access_token}"
    claims = standin.keys.verify(session.access_token)
    assert claims["sub"] == session.user_id
    assert claims["role"] == "authenticated"
    assert _reads_user_files(client)


# --- sign in -----------------------------------------------------------------


def test_supabase_auth_is_an_auth_provider(auth: SupabaseAuth) -> None:
    assert isinstance(auth, AuthProvider)


def test_sign_in(auth: SupabaseAuth, client: Client, user_id: str, supabase_standin) -> None:
    assert _bearer(client) == f"Bearer {supabase_standin.anon_key}"
    assert not _reads_user_files(client)
    session = auth.sign_in(" Ada@Lab.Example ", PASSWORD)
    assert session.user_id == user_id
    assert session.email == EMAIL
    assert session.expires_at.tzinfo == UTC
    assert 3590 < session.expires_in_s() <= 3600
    _expect_runs_as(client, session, supabase_standin)
    assert session.access_token not in repr(session) and session.refresh_token not in repr(session)


def test_no_background_refresh_timer(auth: SupabaseAuth, client: Client, user_id: str) -> None:
    """auto_refresh_token=False: no timer thread per browser session."""
    auth.sign_in(EMAIL, PASSWORD)
    assert client.auth._refresh_token_timer is None


def test_clients_do_not_share_a_session(
    auth: SupabaseAuth, new_client: MakeClient, user_id: str, supabase_standin
) -> None:
    other = new_client()
    auth.sign_in(EMAIL, PASSWORD)
    assert _bearer(other) == f"Bearer {supabase_standin.anon_key}"
    assert other.auth.get_session() is None


def test_wrong_password_and_unknown_email_look_the_same(
    auth: SupabaseAuth, client: Client, user_id: str, supabase_standin
) -> None:
    with pytest.raises(InvalidCredentials) as wrong_password:
        auth.sign_in(EMAIL, "not the password")
    with pytest.raises(InvalidCredentials) as unknown_email:
        auth.sign_in("nobody@lab.example", PASSWORD)
    assert str(wrong_password.value) == str(unknown_email.value) == MSG_INVALID_CREDENTIALS
    assert _bearer(client) == f"Bearer {supabase_standin.anon_key}"


def test_unconfirmed_email(auth: SupabaseAuth, supabase_standin) -> None:
    supabase_standin.create_user(EMAIL, PASSWORD, confirmed=False)
    with pytest.raises(EmailNotConfirmed, match="confirmation link"):
        auth.sign_in(EMAIL, PASSWORD)


def test_each_failure_has_its_own_message(auth: SupabaseAuth, supabase_standin) -> None:
    supabase_standin.create_user("new@lab.example", PASSWORD, confirmed=False)
    messages = set()
    with pytest.raises(InvalidCredentials) as exc:
        auth.sign_in("nobody@lab.example", PASSWORD)
    messages.add(str(exc.value))
    with pytest.raises(EmailNotConfirmed) as exc:
        auth.sign_in("new@lab.example", PASSWORD)
    messages.add(str(exc.value))
    supabase_standin.set_rate_limited(True)
    with pytest.raises(RateLimited) as exc:
        auth.sign_in("new@lab.example", PASSWORD)
    messages.add(str(exc.value))
    messages.add(MSG_UNAVAILABLE)
    assert len(messages) == 4


# --- sign up -----------------------------------------------------------------


def test_sign_up_without_confirmation_signs_in(auth: SupabaseAuth, client: Client, supabase_standin) -> None:
    result = auth.sign_up(EMAIL, PASSWORD)
    assert result.needs_confirmation is False
    assert result.session is not None and result.session.email == EMAIL
    _expect_runs_as(client, result.session, supabase_standin)
    assert auth.sign_in(EMAIL, PASSWORD).user_id == result.session.user_id


def test_sign_up_with_confirmation(auth: SupabaseAuth, client: Client, supabase_standin) -> None:
    supabase_standin.set_require_confirmation(True)
    result = auth.sign_up(EMAIL, PASSWORD)
    assert result.needs_confirmation is True
    assert result.session is None
    assert _bearer(client) == f"Bearer {supabase_standin.anon_key}"
    with pytest.raises(EmailNotConfirmed):
        auth.sign_in(EMAIL, PASSWORD)
    supabase_standin.confirm_email(EMAIL)
    assert auth.sign_in(EMAIL, PASSWORD).email == EMAIL


def test_duplicate_sign_up(auth: SupabaseAuth, user_id: str) -> None:
    with pytest.raises(AccountExists) as exc:
        auth.sign_up(EMAIL, "another password")
    assert str(exc.value) == MSG_ACCOUNT_EXISTS


def test_duplicate_sign_up_with_confirmation_on(auth: SupabaseAuth, user_id: str, supabase_standin) -> None:
    """Supabase then answers with an identity-less stand-in user instead of an error."""
    supabase_standin.set_require_confirmation(True)
    with pytest.raises(AccountExists):
        auth.sign_up(EMAIL, "another password")


def test_sign_up_policy_is_checked_before_any_request(offline: SupabaseAuth) -> None:
    # The service is unreachable: a request would raise AuthUnavailable, not ValidationError.
    with pytest.raises(ValidationError, match="at least 8"):
        offline.sign_up(EMAIL, "1234567")
    with pytest.raises(ValidationError):
        offline.sign_up("not-an-address", PASSWORD)


# --- rate limits and network failures ------------------------------------------


def test_rate_limited(auth: SupabaseAuth, user_id: str, supabase_standin) -> None:
    supabase_standin.set_rate_limited(True)
    with pytest.raises(RateLimited) as exc:
        auth.sign_in(EMAIL, PASSWORD)
    assert str(exc.value) == MSG_RATE_LIMITED
    with pytest.raises(RateLimited) as exc:
        auth.sign_up("new@lab.example", PASSWORD)
    assert str(exc.value) == MSG_EMAIL_RATE_LIMITED
    with pytest.raises(RateLimited):
        auth.request_password_reset(EMAIL)
    supabase_standin.set_rate_limited(False)
    assert auth.sign_in(EMAIL, PASSWORD).user_id == user_id


def test_network_failure(offline: SupabaseAuth) -> None:
    session = Session("u", EMAIL, "a.b.c", "r", datetime.now(UTC))
    attempts = [
        lambda: offline.sign_in(EMAIL, PASSWORD),
        lambda: offline.sign_up(EMAIL, PASSWORD),
        lambda: offline.request_password_reset(EMAIL),
        lambda: offline.refresh(session),
    ]
    for attempt in attempts:
        with pytest.raises(AuthUnavailable) as exc:
            attempt()
        assert str(exc.value) == MSG_UNAVAILABLE
        assert isinstance(exc.value, ConnectionError)
    offline.sign_out(session)  # signing out never fails on the network


def test_ensure_fresh_rides_out_a_network_blip_while_the_token_still_works(offline: SupabaseAuth) -> None:
    expiring = Session("u", EMAIL, "a.b.c", "r", datetime.now(UTC) + timedelta(seconds=30))
    assert offline.ensure_fresh(expiring, margin_s=60) is expiring
    expired = Session("u", EMAIL, "a.b.c", "r", datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(AuthUnavailable):
        offline.ensure_fresh(expired, margin_s=60)


# --- refresh, restore, sign out ------------------------------------------------


def test_refresh_switches_the_header(
    auth: SupabaseAuth, client: Client, user_id: str, supabase_standin
) -> None:
    supabase_standin.set_access_token_lifetime(30)
    session = auth.sign_in(EMAIL, PASSWORD)
    assert session.expires_in_s() <= 30
    supabase_standin.set_access_token_lifetime(3600)
    fresh = auth.ensure_fresh(session, margin_s=60)
    assert fresh.user_id == user_id
    assert fresh.access_token != session.access_token
    assert fresh.refresh_token != session.refresh_token
    assert fresh.expires_in_s() > 3500
    _expect_runs_as(client, fresh, supabase_standin)
    assert auth.ensure_fresh(fresh, margin_s=60) is fresh


def test_explicit_refresh(auth: SupabaseAuth, client: Client, user_id: str, supabase_standin) -> None:
    session = auth.sign_in(EMAIL, PASSWORD)
    supabase_standin.set_access_token_lifetime(1800)
    fresh = auth.refresh(session)
    assert fresh.refresh_token != session.refresh_token
    assert 1790 < fresh.expires_in_s() <= 1800
    _expect_runs_as(client, fresh, supabase_standin)


def test_refresh_with_an_unknown_token_is_session_expired(auth: SupabaseAuth, user_id: str) -> None:
    session = auth.sign_in(EMAIL, PASSWORD)
    forged = Session(session.user_id, EMAIL, session.access_token, "no-such-token", session.expires_at)
    with pytest.raises(SessionExpired):
        auth.refresh(forged)


def test_sign_out(auth: SupabaseAuth, client: Client, user_id: str, supabase_standin) -> None:
    session = auth.sign_in(EMAIL, PASSWORD)
    auth.sign_out(session)
    assert _bearer(client) == f"Bearer {supabase_standin.anon_key}"
    assert not _reads_user_files(client)
    with pytest.raises(SessionExpired):
        auth.refresh(session)
    auth.sign_out(session)  # twice is fine


def test_sign_out_without_network_still_forgets_the_session(
    auth: SupabaseAuth, client: Client, user_id: str, supabase_standin
) -> None:
    session = auth.sign_in(EMAIL, PASSWORD)
    client.options.httpx_client.close()  # every request now fails like a dead network
    auth.sign_out(session)
    assert _bearer(client) == f"Bearer {supabase_standin.anon_key}"
    assert client.auth.get_session() is None


def test_sign_out_is_local_to_this_browser_session(new_client: MakeClient, user_id: str) -> None:
    laptop, lab_pc = SupabaseAuth(new_client()), SupabaseAuth(new_client())
    on_laptop, on_lab_pc = laptop.sign_in(EMAIL, PASSWORD), lab_pc.sign_in(EMAIL, PASSWORD)
    laptop.sign_out(on_laptop)
    with pytest.raises(SessionExpired):
        laptop.refresh(on_laptop)
    assert lab_pc.refresh(on_lab_pc).user_id == user_id


def test_sign_out_revokes_a_session_the_client_does_not_hold(new_client: MakeClient, user_id: str) -> None:
    session = SupabaseAuth(new_client()).sign_in(EMAIL, PASSWORD)
    SupabaseAuth(new_client()).sign_out(session)
    with pytest.raises(SessionExpired):
        SupabaseAuth(new_client()).refresh(session)


# --- password reset --------------------------------------------------------------


def test_request_password_reset(auth: SupabaseAuth, user_id: str, supabase_standin) -> None:
    auth.request_password_reset(" ADA@lab.example ")
    assert supabase_standin.recovery_requests == [EMAIL]


def test_password_reset_for_an_unknown_address_looks_the_same(auth: SupabaseAuth, supabase_standin) -> None:
    auth.request_password_reset("nobody@lab.example")  # no error: addresses are not revealed


def test_sign_out_everywhere_ends_every_device(new_client: MakeClient, user_id: str) -> None:
    laptop, lab_pc = SupabaseAuth(new_client()), SupabaseAuth(new_client())
    on_laptop, on_lab_pc = laptop.sign_in(EMAIL, PASSWORD), lab_pc.sign_in(EMAIL, PASSWORD)
    laptop.sign_out_everywhere(on_laptop)
    for auth, session in ((laptop, on_laptop), (lab_pc, on_lab_pc)):
        with pytest.raises(SessionExpired):
            auth.refresh(session)


def test_resume_acts_as_a_kept_session_in_a_new_client(new_client: MakeClient, user_id: str) -> None:
    """A new tab's client resumes from the tokens the server kept (lib.sessions), and reads as the user."""
    kept = SupabaseAuth(new_client()).sign_in(EMAIL, PASSWORD)
    client = new_client()
    resumed = SupabaseAuth(client).resume(kept.access_token, kept.refresh_token)
    assert resumed.user_id == user_id
    assert _reads_user_files(client)


def test_resume_of_a_session_ended_elsewhere_is_refused(new_client: MakeClient, user_id: str) -> None:
    auth = SupabaseAuth(new_client())
    kept = auth.sign_in(EMAIL, PASSWORD)
    auth.sign_out_everywhere(kept)
    with pytest.raises(SessionExpired):
        SupabaseAuth(new_client()).resume(kept.access_token, kept.refresh_token)
