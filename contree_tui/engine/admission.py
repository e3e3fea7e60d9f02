"""Admission of runs: a bounded number at once, their memory reservations within the engine's budget, the
rest waiting (PENDING) in arrival order.

Each run was capped on its own, but nothing capped the sum: three 3 GB runs took 9 GB of this 23 GB machine
and 200 concurrent spawns were all started. A run is admitted when it is first in line and both its slot and
its reservation fit; the kernel enforces the same budget as a hard limit on the engine's parent cgroup (see
CgroupPool.limit_total), so even runs that outgrow their reservation cannot take the host's memory.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict


class Withdrawn(Exception):
    """A queued run was taken out of line before it started (cancelled, or the engine stopped)."""


class Admission:
    def __init__(self, memory_budget: int, max_runs: int) -> None:
        self.memory_budget = memory_budget
        self.max_runs = max_runs
        self._running: dict[str, int] = {}  # key -> reserved bytes
        self._reserved = 0
        self._queue: OrderedDict[str, tuple[int, asyncio.Future[None]]] = OrderedDict()

    def enter(self, key: str, memory: int) -> asyncio.Future[None] | None:
        """Admit `key` now (None: nothing to await, the usual case) or queue it: the returned future is
        done when it is admitted, or raises Withdrawn. A reservation larger than the budget is clamped to
        it, so such a run runs alone rather than never."""
        memory = min(memory, self.memory_budget)
        if not self._queue and self._fits(memory):
            self._start(key, memory)
            return None
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue[key] = (memory, waiter)
        return waiter

    def leave(self, key: str) -> None:
        """`key` ended (or gave up its place in line); the next in line start if they now fit."""
        reserved = self._running.pop(key, None)
        if reserved is not None:
            self._reserved -= reserved
        queued = self._queue.pop(key, None)
        if queued is not None and not queued[1].done():
            queued[1].cancel()
        self._wake()

    def withdraw(self, key: str, reason: str) -> bool:
        """Take a queued `key` out of line (its waiter raises Withdrawn(reason)); False if it is not queued."""
        queued = self._queue.pop(key, None)
        if queued is None:
            return False
        if not queued[1].done():
            queued[1].set_exception(Withdrawn(reason))
        self._wake()
        return True

    def queued(self) -> list[str]:
        return list(self._queue)

    def is_queued(self, key: str) -> bool:
        return key in self._queue

    def _fits(self, memory: int) -> bool:
        return len(self._running) < self.max_runs and self._reserved + memory <= self.memory_budget

    def _start(self, key: str, memory: int) -> None:
        self._running[key] = memory
        self._reserved += memory

    def _wake(self) -> None:
        while self._queue:
            key, (memory, waiter) = next(iter(self._queue.items()))
            if not self._fits(memory):
                return
            del self._queue[key]
            self._start(key, memory)
            waiter.set_result(None)
