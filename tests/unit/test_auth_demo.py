"""DemoAuth: accounts and sessions in the demo SQLite database."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import lib.auth.demo as auth
from lib.auth import AuthProvider, DemoAuth, Session
from lib.errors import (
    AccountExists,
    AuthError,
    InvalidCredentials,
    SessionExpired,
    ValidationError,
)

EMAIL = "ada@lab.example"
PASSWORD = "correct horse"


class Clock:
    """A settable clock, so expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "demo.sqlite3"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def demo(db_path: Path, clock: Clock) -> DemoAuth:
    return DemoAuth(db_path, clock=clock)


def _rows(db_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql).fetchall()


def test_is_an_auth_provider(demo: DemoAuth) -> None:
    assert isinstance(demo, AuthProvider)


def test_sign_up_signs_straight_in(demo: DemoAuth, clock: Clock) -> None:
    result = demo.sign_up("  Ada@Lab.Example ", PASSWORD)
    assert result.needs_confirmation is False
    session = result.session
    assert session is not None
    assert session.email == EMAIL
    assert session.expires_at == clock.now + timedelta(seconds=auth.DEMO_ACCESS_TTL_S)
    assert session.expires_at.tzinfo is not None
    assert session.access_token != session.refresh_token


def test_sign_in_after_sign_up(demo: DemoAuth) -> None:
    user_id = demo.sign_up(EMAIL, PASSWORD).session.user_id
    session = demo.sign_in("ADA@lab.example", PASSWORD)
    assert session.user_id == user_id
    assert session.email == EMAIL


def test_each_sign_in_gets_its_own_tokens(demo: DemoAuth) -> None:
    demo.sign_up(EMAIL, PASSWORD)
    first, second = demo.sign_in(EMAIL, PASSWORD), demo.sign_in(EMAIL, PASSWORD)
    assert first.access_token != second.access_token
    assert first.refresh_token != second.refresh_token


def test_wrong_password_and_unknown_email_look_the_same(demo: DemoAuth) -> None:
    demo.sign_up(EMAIL, PASSWORD)
    with pytest.raises(InvalidCredentials) as wrong_password:
        demo.sign_in(EMAIL, "not the password")
    with pytest.raises(InvalidCredentials) as unknown_email:
        demo.sign_in("nobody@lab.example", PASSWORD)
    assert str(wrong_password.value) == str(unknown_email.value) == auth.MSG_INVALID_CREDENTIALS


def test_duplicate_sign_up_is_refused(demo: DemoAuth) -> None:
    demo.sign_up(EMAIL, PASSWORD)
    with pytest.raises(AccountExists, match="already exists"):
        demo.sign_up("ADA@LAB.EXAMPLE", "another password")


@pytest.mark.parametrize("password", ["", "short", "1234567"])
def test_sign_up_password_policy(demo: DemoAuth, password: str) -> None:
    with pytest.raises(ValidationError, match="at least 8 characters"):
        demo.sign_up(EMAIL, password)


@pytest.mark.parametrize("email", ["", "   ", "ada", "ada@", "@lab.example", "ada@lab", "a da@lab.example"])
def test_email_shape_is_checked(demo: DemoAuth, email: str) -> None:
    with pytest.raises(ValidationError):
        demo.sign_up(email, PASSWORD)
    with pytest.raises(ValidationError):
        demo.sign_in(email, PASSWORD)


def test_empty_password_at_sign_in_asks_for_it(demo: DemoAuth) -> None:
    with pytest.raises(ValidationError, match="Enter your password"):
        demo.sign_in(EMAIL, "")


def test_refresh_rotates_tokens_and_the_old_refresh_token_stops_working(demo: DemoAuth, clock: Clock) -> None:
    session = demo.sign_up(EMAIL, PASSWORD).session
    clock.advance(600)
    fresh = demo.refresh(session)
    assert fresh.user_id == session.user_id and fresh.email == EMAIL
    assert fresh.access_token != session.access_token
    assert fresh.refresh_token != session.refresh_token
    assert fresh.expires_at == clock.now + timedelta(seconds=auth.DEMO_ACCESS_TTL_S)
    with pytest.raises(SessionExpired):
        demo.refresh(session)  # refresh tokens are single use


def test_expired_refresh_token_is_session_expired(demo: DemoAuth, clock: Clock) -> None:
    session = demo.sign_up(EMAIL, PASSWORD).session
    clock.advance(auth.DEMO_REFRESH_TTL_S + 1)
    with pytest.raises(SessionExpired) as excinfo:
        demo.refresh(session)
    assert str(excinfo.value) == auth.MSG_SESSION_EXPIRED
    with pytest.raises(SessionExpired):
        demo.ensure_fresh(session)


def test_ensure_fresh_keeps_a_session_with_time_left(demo: DemoAuth, clock: Clock) -> None:
    session = demo.sign_up(EMAIL, PASSWORD).session
    clock.advance(auth.DEMO_ACCESS_TTL_S - 61)
    assert demo.ensure_fresh(session, margin_s=60) is session


def test_ensure_fresh_refreshes_within_the_margin(demo: DemoAuth, clock: Clock) -> None:
    session = demo.sign_up(EMAIL, PASSWORD).session
    clock.advance(auth.DEMO_ACCESS_TTL_S - 30)
    fresh = demo.ensure_fresh(session, margin_s=60)
    assert fresh.access_token != session.access_token
    assert fresh.expires_in_s(clock.now) == pytest.approx(auth.DEMO_ACCESS_TTL_S)


def test_ensure_fresh_refreshes_an_expired_access_token(demo: DemoAuth, clock: Clock) -> None:
    session = demo.sign_up(EMAIL, PASSWORD).session
    clock.advance(auth.DEMO_ACCESS_TTL_S + 5)
    assert demo.ensure_fresh(session).expires_in_s(clock.now) > 0


def test_sign_out_ends_the_session(demo: DemoAuth, db_path: Path) -> None:
    session = demo.sign_up(EMAIL, PASSWORD).session
    other = demo.sign_in(EMAIL, PASSWORD)
    demo.sign_out(session)
    with pytest.raises(SessionExpired):
        demo.refresh(session)
    demo.sign_out(session)  # idempotent
    assert demo.refresh(other).user_id == other.user_id  # other sign-ins stay


def test_tokens_are_not_in_repr(demo: DemoAuth) -> None:
    session = demo.sign_up(EMAIL, PASSWORD).session
    for text in (repr(session), str(session), repr(demo.sign_up("bo@lab.example", PASSWORD))):
        assert session.access_token not in text
        assert session.refresh_token not in text
    assert EMAIL in repr(session)


def test_tokens_are_stored_only_as_hashes(demo: DemoAuth, db_path: Path) -> None:
    session = demo.sign_up(EMAIL, PASSWORD).session
    dump = "\n".join(_rows_dump(db_path))
    assert session.access_token not in dump
    assert session.refresh_token not in dump
    assert hashlib.sha256(session.access_token.encode()).hexdigest() in dump


def _rows_dump(db_path: Path) -> list[str]:
    with sqlite3.connect(db_path) as conn:
        return list(conn.iterdump())


def test_password_is_hashed_with_scrypt(
    demo: DemoAuth, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict] = []
    real_scrypt = hashlib.scrypt

    def spy(password: bytes, **kwargs: object) -> bytes:
        calls.append(kwargs)
        return real_scrypt(password, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", spy)
    demo.sign_up(EMAIL, PASSWORD)
    assert calls and all(
        (c["n"], c["r"], c["p"], c["dklen"]) == (2**14, 8, 1, 32) and len(c["salt"]) == 16 for c in calls
    )
    (stored, salt), = _rows(db_path, "select password_hash, salt from demo_accounts")
    assert stored == real_scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    assert PASSWORD.encode() not in stored


def test_salts_differ_between_accounts(demo: DemoAuth, db_path: Path) -> None:
    demo.sign_up(EMAIL, PASSWORD)
    demo.sign_up("bo@lab.example", PASSWORD)
    (hash_a, salt_a), (hash_b, salt_b) = _rows(db_path, "select password_hash, salt from demo_accounts")
    assert salt_a != salt_b and hash_a != hash_b


def test_password_compare_is_constant_time(demo: DemoAuth, monkeypatch: pytest.MonkeyPatch) -> None:
    demo.sign_up(EMAIL, PASSWORD)
    compared: list[int] = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    with pytest.raises(InvalidCredentials):
        demo.sign_in(EMAIL, "wrong password")
    demo.sign_in(EMAIL, PASSWORD)
    assert len(compared) == 2


def test_emails_are_stored_lower_case(demo: DemoAuth, db_path: Path) -> None:
    demo.sign_up("Ada@LAB.example", PASSWORD)
    assert _rows(db_path, "select email from demo_accounts") == [(EMAIL,)]


def test_password_reset_is_refused_with_a_clear_message(demo: DemoAuth) -> None:
    demo.sign_up(EMAIL, PASSWORD)
    with pytest.raises(AuthError, match="Demo accounts can't reset passwords"):
        demo.request_password_reset(EMAIL)


def test_ensure_account_is_idempotent(db_path: Path) -> None:
    first = DemoAuth(db_path).ensure_account(EMAIL, PASSWORD)
    again = DemoAuth(db_path).ensure_account("ADA@lab.example", PASSWORD)
    assert first == again
    assert DemoAuth(db_path).sign_in(EMAIL, PASSWORD).user_id == first
    assert len(_rows(db_path, "select id from demo_accounts")) == 1


def test_ensure_account_resets_a_changed_password(db_path: Path) -> None:
    demo = DemoAuth(db_path)
    user_id = demo.sign_up(EMAIL, "an older password").session.user_id
    assert demo.ensure_account(EMAIL, PASSWORD) == user_id
    assert demo.sign_in(EMAIL, PASSWORD).user_id == user_id
    with pytest.raises(InvalidCredentials):
        demo.sign_in(EMAIL, "an older password")


def test_session_needs_an_aware_expiry() -> None:
    with pytest.raises(ValueError):
        Session("u", EMAIL, "a", "r", datetime(2026, 1, 1))
    local = datetime(2026, 1, 1, 12, tzinfo=UTC).astimezone()
    assert Session("u", EMAIL, "a", "r", local).expires_at.tzinfo == UTC


def test_expires_in_s() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    session = Session("u", EMAIL, "a", "r", now + timedelta(seconds=90))
    assert session.expires_in_s(now) == 90
    assert session.expires_in_s(now + timedelta(seconds=100)) == -10
    assert 0 < Session("u", EMAIL, "a", "r", datetime.now(UTC) + timedelta(minutes=5)).expires_in_s() <= 300


def test_concurrent_sign_ins_from_many_threads(db_path: Path) -> None:
    """Streamlit sessions are threads sharing the database file."""
    DemoAuth(db_path).ensure_account(EMAIL, PASSWORD)
    sessions: list[Session] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            provider = DemoAuth(db_path)
            session = provider.sign_in(EMAIL, PASSWORD)
            sessions.append(provider.refresh(session))
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({s.access_token for s in sessions}) == 6


def test_one_refresh_wins_when_two_race(demo: DemoAuth) -> None:
    session = demo.sign_up(EMAIL, PASSWORD).session
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        try:
            demo.refresh(session)
            outcomes.append("ok")
        except SessionExpired:
            outcomes.append("expired")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["expired", "expired", "expired", "ok"]


def test_resume_keeps_a_live_access_token_and_rotates_an_expiring_one(demo: DemoAuth, clock: Clock) -> None:
    demo.ensure_account(EMAIL, PASSWORD)
    kept = demo.sign_in(EMAIL, PASSWORD)
    same = demo.resume(kept.access_token, kept.refresh_token)
    assert (same.access_token, same.refresh_token) == (kept.access_token, kept.refresh_token)
    assert same.user_id == kept.user_id
    clock.advance(auth.DEMO_ACCESS_TTL_S - 10)
    rotated = demo.resume(kept.access_token, kept.refresh_token)
    assert rotated.user_id == kept.user_id and rotated.refresh_token != kept.refresh_token
    with pytest.raises(SessionExpired):
        demo.resume(kept.access_token, kept.refresh_token)  # the old pair was used up


def test_sign_out_everywhere_ends_every_session_of_the_user(demo: DemoAuth) -> None:
    demo.ensure_account(EMAIL, PASSWORD)
    laptop, lab_pc = demo.sign_in(EMAIL, PASSWORD), demo.sign_in(EMAIL, PASSWORD)
    demo.sign_out_everywhere(laptop)
    for session in (laptop, lab_pc):
        with pytest.raises(SessionExpired):
            demo.resume("", session.refresh_token)


# --- administrators (issue 14, attack 4) ------------------------------------------------------------


def test_only_the_server_makes_an_administrator(db_path: Path) -> None:
    """Sign-up (with any address, in any case) gives a researcher; ensure_account, the server's seeding,
    is the only way to the admin role, and the session carries it from the account, not from the e-mail."""
    server_side = DemoAuth(db_path)
    server_side.ensure_account("boss@lab.example", PASSWORD, role=auth.ADMIN_ROLE)
    provider = DemoAuth(db_path)
    assert provider.sign_in("BOSS@lab.example", PASSWORD).is_admin
    signed_up = provider.sign_up("Admin@Lab.Example", PASSWORD).session
    assert signed_up is not None and not signed_up.is_admin
    assert not provider.sign_in("admin@lab.example", PASSWORD).is_admin
    assert _rows(db_path, "select email, role from demo_accounts order by email") == [
        ("admin@lab.example", "researcher"), ("boss@lab.example", "admin")]


def test_the_role_survives_a_refresh_and_can_be_taken_away(db_path: Path) -> None:
    server_side = DemoAuth(db_path)
    server_side.ensure_account("boss@lab.example", PASSWORD, role=auth.ADMIN_ROLE)
    session = DemoAuth(db_path).sign_in("boss@lab.example", PASSWORD)
    assert DemoAuth(db_path).refresh(session).is_admin
    server_side.ensure_account("boss@lab.example", PASSWORD)  # back to researcher
    assert not DemoAuth(db_path).sign_in("boss@lab.example", PASSWORD).is_admin


def test_a_resumed_session_keeps_the_accounts_role(db_path: Path) -> None:
    """A new tab resumes from the kept tokens (lib.sessions): an administrator stays one, from the account."""
    DemoAuth(db_path).ensure_account("boss@lab.example", PASSWORD, role=auth.ADMIN_ROLE)
    kept = DemoAuth(db_path).sign_in("boss@lab.example", PASSWORD)
    assert DemoAuth(db_path).resume(kept.access_token, kept.refresh_token).is_admin
