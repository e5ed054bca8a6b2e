"""Fair share of the check slots: one queue per user, served round-robin, under two caps.

:class:`FairQueue` only decides *which* waiting check starts next and where each
waiting check stands; it runs nothing and knows no processes (:mod:`.pool` does).
A researcher's folder of 50 files waits in their own queue, so another
researcher's single file is the next to start once a slot is free, not the 51st:
the owner whose last check started longest ago goes first.
Not thread-safe: the pool calls it under its lock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckLimits:
    """How many checks run at once: on the whole server and for one user."""

    total: int
    per_user: int

    def __post_init__(self) -> None:
        if self.total < 1 or self.per_user < 1:
            raise ValueError("check limits must be at least 1")


class FairQueue:
    """Waiting checks per owner (first in, first out); the next to start is the owner's, below their cap,
    whose last check started longest ago (one who never had one goes first)."""

    def __init__(self, limits: CheckLimits) -> None:
        self.limits = limits
        self._waiting: dict[str, deque[str]] = {}
        """owner → their waiting keys, owners in the order they arrived."""
        self._owner_of: dict[str, str] = {}
        self._running: dict[str, str] = {}
        """running key → owner."""
        self._last_start: dict[str, int] = {}
        """owner → when (a counter) a check of theirs last started."""
        self._starts = 0

    # --- changes --------------------------------------------------------------------------------------

    def add(self, key: str, owner: str) -> None:
        """Queue a check at the end of its owner's queue."""
        if key in self._owner_of or key in self._running:
            raise ValueError(f"check {key!r} is queued or running already")
        self._owner_of[key] = owner
        self._waiting.setdefault(owner, deque()).append(key)

    def remove(self, key: str) -> bool:
        """Take a waiting check out of the queue; False if it was not waiting."""
        owner = self._owner_of.pop(key, None)
        if owner is None:
            return False
        queue = self._waiting[owner]
        queue.remove(key)
        if not queue:
            del self._waiting[owner]
        return True

    def start_next(self) -> tuple[str, str] | None:
        """The next check to start as ``(key, owner)``, now counted as running; None if none may start."""
        if len(self._running) >= self.limits.total:
            return None
        running = self._running_counts()
        eligible = [o for o in self._waiting if running.get(o, 0) < self.limits.per_user]
        if not eligible:
            return None
        owner = min(eligible, key=lambda o: self._last_start.get(o, -1))  # stable: earlier arrivals win ties
        key = self._waiting[owner].popleft()
        if not self._waiting[owner]:
            del self._waiting[owner]
        del self._owner_of[key]
        self._running[key] = owner
        self._last_start[owner] = self._starts
        self._starts += 1
        return key, owner

    def finish(self, key: str) -> None:
        """A running check ended (done, failed, cancelled or its worker died): its slot is free."""
        self._running.pop(key, None)

    # --- questions ------------------------------------------------------------------------------------

    def is_waiting(self, key: str) -> bool:
        return key in self._owner_of

    @property
    def running_count(self) -> int:
        return len(self._running)

    @property
    def waiting_count(self) -> int:
        return len(self._owner_of)

    def positions(self) -> dict[str, int]:
        """Every waiting check's place in the order they would start (1 = next), slots freeing one at a time.

        The same rule as :meth:`start_next`, played forward: owners below their cap first, then the one
        whose last start is oldest; each start makes its owner the most recent.
        """
        queues = {owner: deque(keys) for owner, keys in self._waiting.items()}
        last = dict(self._last_start)
        at_cap = {o for o, n in self._running_counts().items() if n >= self.limits.per_user}
        order: list[str] = []
        for tick in range(self._starts, self._starts + len(self._owner_of)):
            owner = min(queues, key=lambda o: (o in at_cap, last.get(o, -1)))
            order.append(queues[owner].popleft())
            if not queues[owner]:
                del queues[owner]
            last[owner] = tick
            at_cap.discard(owner)  # its running check is assumed to be the slot that freed up
        return {key: place for place, key in enumerate(order, start=1)}

    def position(self, key: str) -> int | None:
        """This waiting check's place (1 = next to start); None if it is not waiting."""
        return self.positions().get(key) if self.is_waiting(key) else None

    def _running_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for owner in self._running.values():
            counts[owner] = counts.get(owner, 0) + 1
        return counts
