"""Sign-in throttling: failed sign-ins per e-mail address and per client address slow the next ones down.

Both auth providers (``lib.auth``) run every password sign-in through one
:class:`SignInThrottle` per app process, so demo and cloud mode behave the
same, whatever GoTrue's own rate limits add in the cloud.

* Every attempt counts as a failure the moment it starts (so fifty parallel
  guesses cannot all slip past one check) and is taken back when it turns out
  not to have been a wrong password: a success forgets the e-mail address's
  failures, an unreachable auth service gives the attempt back.
* Past :data:`FREE_FAILURES` failures for an e-mail address (or
  :data:`FREE_ADDRESS_FAILURES` from one client address, where a lab's users
  may share one), the next attempt waits ``BASE_DELAY_S * 2**(extra - 1)``
  seconds after the last failure, at most :data:`MAX_DELAY_S`, even with the
  right password. The refusal says how long.
* Failures are forgotten :data:`FORGET_AFTER_S` after the last one.

The counts live in this process's memory: a restart forgets them, and with
several app processes behind a load balancer each keeps its own, so an
attacker spread over N processes gets N times the attempts before waiting.
The client address is what Streamlit reports (``st.context.ip_address``: the
WebSocket peer, or a proxy's forwarded address), None for localhost; it is a
second line behind the per-address count, never the only one.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from lib.errors import RateLimited

FREE_FAILURES = 5
"""Wrong passwords for one e-mail address before any wait."""
FREE_ADDRESS_FAILURES = 20
"""Wrong passwords from one client address before any wait (several users may share it)."""
BASE_DELAY_S = 1.0
"""The first wait; each further failure doubles it."""
MAX_DELAY_S = 15 * 60.0
"""The longest wait between two attempts."""
FORGET_AFTER_S = 60 * 60.0
"""A key's failures are forgotten this long after the last one."""
MAX_KEYS = 50_000
"""Most e-mail and client addresses remembered at once; the longest quiet go first."""


class SignInThrottled(RateLimited):
    """Too many failed sign-ins: the message says when to try again."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class _Failures:
    count: int
    last_at: float


class SignInThrottle:
    """Counts of failed sign-ins per e-mail and per client address, shared by a process's sessions."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._now = clock
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, _Failures] = OrderedDict()

    def __repr__(self) -> str:  # never the addresses: they are personal data
        return f"SignInThrottle({len(self._keys)} keys)"

    def begin(self, email: str, address: str | None) -> None:
        """Start an attempt: raise :class:`SignInThrottled` if one of its keys must still wait,
        else count it as a failure until :meth:`succeeded` or :meth:`abandoned` says otherwise."""
        keys = _keys(email, address)
        with self._lock:
            now = self._now()
            for key, free in keys:
                wait = self._wait(key, free, now)
                if wait > 0:
                    raise _throttled(key, wait, now)
            for key, _free in keys:
                record = self._fresh(key, now)
                record.count += 1
                record.last_at = now
                self._keys.move_to_end(key)
            while len(self._keys) > MAX_KEYS:
                self._keys.popitem(last=False)

    def succeeded(self, email: str, address: str | None) -> None:
        """The password was right: the e-mail address starts afresh; the client address gets its attempt back."""
        with self._lock:
            self._keys.pop(_email_key(email), None)
            self._give_back(_address_key(address))

    def abandoned(self, email: str, address: str | None) -> None:
        """The attempt said nothing about the password (service unreachable, input refused): give it back."""
        with self._lock:
            self._give_back(_email_key(email))
            self._give_back(_address_key(address))

    # -- internals --

    def _fresh(self, key: str, now: float) -> _Failures:
        record = self._keys.get(key)
        if record is None or now - record.last_at > FORGET_AFTER_S:
            record = self._keys[key] = _Failures(0, now)
        return record

    def _wait(self, key: str, free: int, now: float) -> float:
        record = self._keys.get(key)
        if record is None or now - record.last_at > FORGET_AFTER_S or record.count < free:
            return 0.0
        delay = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (record.count - free))
        return max(0.0, record.last_at + delay - now)

    def _give_back(self, key: str | None) -> None:
        record = self._keys.get(key) if key else None
        if record is not None:
            record.count = max(0, record.count - 1)


def _email_key(email: str) -> str:
    return "email:" + (email or "").strip().lower()


def _address_key(address: str | None) -> str | None:
    return f"address:{address}" if address else None


def _keys(email: str, address: str | None) -> list[tuple[str, int]]:
    keys = [(_email_key(email), FREE_FAILURES)]
    if address_key := _address_key(address):
        keys.append((address_key, FREE_ADDRESS_FAILURES))
    return keys


def _throttled(key: str, wait_s: float, now: float) -> SignInThrottled:
    seconds = max(1, math.ceil(wait_s))
    until = datetime.fromtimestamp(now + seconds, UTC)
    who = "this e-mail address" if key.startswith("email:") else "your network address"
    wait = f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} min"
    return SignInThrottled(
        f"Too many failed sign-ins for {who}. Wait {wait} (until {until:%H:%M:%S} UTC), then try again; "
        "if you forgot your password, use Forgot password.",
        retry_after_s=seconds,
    )
