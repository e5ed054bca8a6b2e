"""Fair share of the check slots: one queue per user, served round-robin, under two caps.

:class:`FairQueue` only decides *which* waiting check starts next and where each
waiting check stands; it runs nothing and knows no processes (:mod:`.pool` does).
A researcher's folder of 50 files waits in their own queue, so another
researcher's single file is the next to start once a slot is free, not the 51st.
Not thread-safe: the pool calls it under its lock.
"""

from __future__ import annotations

from collections import OrderedDict, deque
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
    """Waiting checks per owner (first in, first out), started round-robin across owners."""

    def __init__(self, limits: CheckLimits) -> None:
        self.limits = limits
        self._waiting: OrderedDict[str, deque[str]] = OrderedDict()
        """owner → their waiting keys; the dict's order is the rotation (next owner first)."""
        self._owner_of: dict[str, str] = {}
        self._running: dict[str, str] = {}
        """running key → owner."""

    # --- changes --------------------------------------------------------------------------------------

    def add(self, key: str, owner: str) -> None:
        """Queue a check at the end of its owner's queue (an owner new to the rotation goes last)."""
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
        owner = next((o for o in self._waiting if self._running_for(o) < self.limits.per_user), None)
        if owner is None:
            return None
        queue = self._waiting.pop(owner)  # popped and re-added: this owner goes to the back of the rotation
        key = queue.popleft()
        if queue:
            self._waiting[owner] = queue
        del self._owner_of[key]
        self._running[key] = owner
        return key, owner

    def finish(self, key: str) -> None:
        """A running check ended (done, failed, cancelled or its worker died): its slot is free."""
        self._running.pop(key, None)

    # --- questions ------------------------------------------------------------------------------------

    def is_waiting(self, key: str) -> bool:
        return key in self._owner_of

    def is_running(self, key: str) -> bool:
        return key in self._running

    @property
    def running_count(self) -> int:
        return len(self._running)

    @property
    def waiting_count(self) -> int:
        return len(self._owner_of)

    def positions(self) -> dict[str, int]:
        """Every waiting check's place in the order they would start (1 = next), slots freeing one at a time.

        Round-robin over owners in rotation order, each taking its next check per round; in the first
        round owners below their cap come before owners whose checks fill their cap (those wait for one
        of their own to end).
        """
        queues = {owner: list(keys) for owner, keys in self._waiting.items()}
        free_first = sorted(queues, key=lambda o: self._running_for(o) >= self.limits.per_user)  # stable
        order: list[str] = []
        depth = 0
        while len(order) < len(self._owner_of):
            for owner in free_first if depth == 0 else queues:
                if depth < len(queues[owner]):
                    order.append(queues[owner][depth])
            depth += 1
        return {key: place for place, key in enumerate(order, start=1)}

    def position(self, key: str) -> int | None:
        """This waiting check's place (1 = next to start); None if it is not waiting."""
        return self.positions().get(key) if self.is_waiting(key) else None

    def _running_for(self, owner: str) -> int:
        return sum(1 for o in self._running.values() if o == owner)
