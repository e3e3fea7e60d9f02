"""A small pool of pre-forked keepers (see launch.Keeper), each already in its own cgroup slot."""

from __future__ import annotations

from contree_tui.engine.sandbox.launch import Keeper
from contree_tui.engine.sandbox.limits import CgroupPool, Limits

# Two cores here: a few idle keepers cover bursts of parallel runs; more only cost idle processes.
DEFAULT_IDLE_KEEPERS = 3


class KeeperPool:
    def __init__(self, cgroups: CgroupPool, limits: Limits, size: int = DEFAULT_IDLE_KEEPERS) -> None:
        self.cgroups = cgroups
        self.limits = limits
        self.size = size
        self._idle: list[tuple[Keeper, str | None]] = []
        self._closed = False

    def _fork(self, limits: Limits) -> tuple[Keeper, str | None]:
        slot, procs = self.cgroups.acquire(limits) if self.cgroups.enabled else (None, [])
        return Keeper.fork(procs), slot

    def take(self, limits: Limits) -> tuple[Keeper, str | None]:
        """An idle keeper (forked now if none is left) whose slot carries `limits`."""
        if not self._idle:
            return self._fork(limits)
        keeper, slot = self._idle.pop()
        if slot is not None:
            self.cgroups.ensure_limits(slot, limits)
        return keeper, slot

    def refill(self) -> None:
        while not self._closed and len(self._idle) < self.size:
            self._idle.append(self._fork(self.limits))

    def close(self) -> None:
        self._closed = True
        for keeper, slot in self._idle:
            keeper.discard()
            if slot is not None:
                self.cgroups.release(slot)
        self._idle.clear()
