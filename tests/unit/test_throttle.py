"""Sign-in throttling (issue 14, attack 6): lib.throttle on its own with a fake clock, then through DemoAuth.

The same throttle runs in SupabaseAuth; tests/integration/test_bad_input.py tries both providers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lib.auth import DemoAuth
from lib.errors import AuthUnavailable, InvalidCredentials, RateLimited
from lib.throttle import FREE_ADDRESS_FAILURES, FREE_FAILURES, MAX_DELAY_S, SignInThrottle, SignInThrottled

EMAIL = "ada@lab.example"
PASSWORD = "correct horse"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def fail(throttle: SignInThrottle, email: str = EMAIL, address: str | None = None, times: int = 1) -> None:
    for _ in range(times):
        throttle.begin(email, address)  # counted as a failure until said otherwise


def test_free_failures_then_a_wait_that_doubles_and_says_when() -> None:
    clock = Clock()
    throttle = SignInThrottle(clock)
    fail(throttle, times=FREE_FAILURES)
    with pytest.raises(SignInThrottled) as first:
        throttle.begin(EMAIL, None)
    assert first.value.retry_after_s == 1 and isinstance(first.value, RateLimited)
    assert "this e-mail address" in str(first.value) and "Wait 1 s (until" in str(first.value)
    clock.now += 1.5
    fail(throttle)  # the next failure doubles the wait
    with pytest.raises(SignInThrottled) as second:
        throttle.begin(EMAIL, None)
    assert second.value.retry_after_s == 2


def test_the_right_password_waits_too_and_then_resets_the_count() -> None:
    clock = Clock()
    throttle = SignInThrottle(clock)
    fail(throttle, times=FREE_FAILURES)
    with pytest.raises(SignInThrottled):
        throttle.begin(EMAIL, None)  # even with the right password: it is not checked
    clock.now += 2
    throttle.begin(EMAIL, None)
    throttle.succeeded(EMAIL, None)
    fail(throttle, times=FREE_FAILURES)  # a fresh allowance after a success


def test_waits_are_capped_and_failures_are_forgotten_after_a_quiet_hour() -> None:
    clock = Clock()
    throttle = SignInThrottle(clock)
    for _ in range(FREE_FAILURES + 30):
        clock.now += MAX_DELAY_S  # always past the wait
        fail(throttle)
    with pytest.raises(SignInThrottled) as caught:
        throttle.begin(EMAIL, None)
    assert caught.value.retry_after_s == MAX_DELAY_S
    assert "15 min" in str(caught.value)
    clock.now += 3_601
    throttle.begin(EMAIL, None)


def test_e_mail_addresses_are_counted_case_and_space_insensitively() -> None:
    throttle = SignInThrottle(Clock())
    fail(throttle, email=" Ada@Lab.Example ", times=FREE_FAILURES)
    with pytest.raises(SignInThrottled):
        throttle.begin(EMAIL, None)


def test_one_client_address_spraying_many_e_mail_addresses_is_slowed_down() -> None:
    throttle = SignInThrottle(Clock())
    for i in range(FREE_ADDRESS_FAILURES):
        fail(throttle, email=f"user{i}@lab.example", address="203.0.113.7")
    with pytest.raises(SignInThrottled, match="your network address"):
        throttle.begin("fresh@lab.example", "203.0.113.7")
    throttle.begin("fresh@lab.example", "198.51.100.1")  # another address is not held up


def test_an_attempt_that_says_nothing_about_the_password_is_given_back() -> None:
    throttle = SignInThrottle(Clock())
    for _ in range(3 * FREE_FAILURES):
        throttle.begin(EMAIL, "203.0.113.7")
        throttle.abandoned(EMAIL, "203.0.113.7")
    throttle.begin(EMAIL, "203.0.113.7")


def test_parallel_guesses_cannot_all_slip_past_one_check() -> None:
    throttle = SignInThrottle(Clock())
    start = threading.Barrier(50)
    passed: list[int] = []

    def guess() -> None:
        start.wait()
        try:
            throttle.begin(EMAIL, None)
            passed.append(1)
        except SignInThrottled:
            pass

    threads = [threading.Thread(target=guess) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(passed) == FREE_FAILURES


def test_repr_names_no_address() -> None:
    throttle = SignInThrottle(Clock())
    fail(throttle, address="203.0.113.7")
    assert "203.0.113.7" not in repr(throttle) and EMAIL not in repr(throttle)


# --- through DemoAuth ---------------------------------------------------------------------------------


@pytest.fixture
def demo(tmp_path: Path) -> DemoAuth:
    provider = DemoAuth(tmp_path / "demo.sqlite3")
    provider.sign_up(EMAIL, PASSWORD)
    return provider


def test_demo_sign_in_is_throttled_with_backoff_even_for_the_right_password(demo: DemoAuth) -> None:
    for _ in range(FREE_FAILURES):
        with pytest.raises(InvalidCredentials):
            demo.sign_in(EMAIL, "wrong password", client_address="203.0.113.7")
    with pytest.raises(SignInThrottled, match=r"Wait \d+ s \(until \d\d:\d\d:\d\d UTC\), then try again"):
        demo.sign_in(EMAIL, PASSWORD, client_address="203.0.113.7")


def test_demo_sign_in_with_the_right_password_keeps_working_for_its_owner(demo: DemoAuth) -> None:
    for _ in range(FREE_FAILURES - 1):
        with pytest.raises(InvalidCredentials):
            demo.sign_in(EMAIL, "wrong password")
    assert demo.sign_in(EMAIL, PASSWORD).email == EMAIL
    for _ in range(FREE_FAILURES - 1):  # the success started the count afresh
        with pytest.raises(InvalidCredentials):
            demo.sign_in(EMAIL, "wrong password")


def test_providers_of_one_process_share_the_throttle(tmp_path: Path) -> None:
    shared = SignInThrottle()
    first = DemoAuth(tmp_path / "demo.sqlite3", throttle=shared)
    first.sign_up(EMAIL, PASSWORD)
    for _ in range(FREE_FAILURES):
        with pytest.raises(InvalidCredentials):
            first.sign_in(EMAIL, "wrong password")
    with pytest.raises(SignInThrottled):  # another browser session's provider
        DemoAuth(tmp_path / "demo.sqlite3", throttle=shared).sign_in(EMAIL, PASSWORD)


def test_an_unreachable_service_does_not_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = DemoAuth(tmp_path / "demo.sqlite3")
    provider.sign_up(EMAIL, PASSWORD)

    def down(self, email, password):
        raise AuthUnavailable("The sign-in service can't be reached right now.")

    monkeypatch.setattr(DemoAuth, "_sign_in", down)
    for _ in range(3 * FREE_FAILURES):
        with pytest.raises(AuthUnavailable):
            provider.sign_in(EMAIL, PASSWORD)
    monkeypatch.undo()
    assert provider.sign_in(EMAIL, PASSWORD).email == EMAIL
