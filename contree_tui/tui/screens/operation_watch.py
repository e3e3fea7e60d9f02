"""Operations another client starts while the TUI runs (`contree-tui run` or `import` in another terminal,
contree-sdk, an agent through contree-mcp, another TUI): a row each AS IT STARTS, followed like the TUI's own
(its state, its live log on select, its bar for an import), its new snapshot in the tree under its parent when
it ends. With the cursor on the newest row, the new row takes the cursor (in view, its log shown: `tail -f`);
a cursor moved up stays. A mixin of MainScreen, kept apart so the screen's module stays about layout, loading
and following.

One listing of the operations created since the newest one seen (minus an overlap: `since` is whole seconds,
and a hosted server may show an item a little late) every second on the embedded engine, every 5 s on a
hosted Contree; then one GET per operation that is new here (its command). A quiet poll is that one listing:
9 ms median with 20 operations in the window, measured on a 2-core VM at load 7.6 where a whoami took
4.9 ms: under 1% of the 1 s period (`watch_ms` keeps the last 50 polls' figures).
Quiet while the link is down (the banner says so). The TUI's own runs and imports are never taken for
another client's: the watch keeps off while one is being spawned, until its row and its follower exist.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime
from typing import Any

from textual import work

from contree_tui.tui.backend_error import BackendError
from contree_tui.tui.model import Operation, OutputBuffer

WATCH_EMBEDDED = 1.0  # seconds between listings: another client's run shows within a second
WATCH_HOSTED = 5.0  # a hosted Contree: one small listing per 5 s
OVERLAP = 5.0  # seconds re-listed behind the newest operation seen


class OperationWatch:
    """Mixed into MainScreen: uses its backend, table, tree, lineage, buffers, `_followed`, `follow_existing`,
    `_add_result` and `load`."""

    backend: Any
    lineage: Any
    buffers: dict[str, OutputBuffer]
    _followed: set[str]
    _posting_imports: int

    def _init_operation_watch(self) -> None:
        self._watching = False
        self._watch_from: datetime | None = None  # operations created since then are new to this session
        self._watch_since = 0.0  # the next listing's `since` (epoch seconds, before the overlap)
        self.watch_ms: deque[float] = deque(maxlen=50)  # the last polls' wall time
        self._auto_followed: set[str] = set()  # followed once by the watch: a broken follow is not retried here

    def _attach_operation_watch(self, backend: Any) -> None:
        if not hasattr(backend, "operations_since"):  # a frozen backend in tests
            return
        self._watch_from = self.clock()  # type: ignore[attr-defined]
        self._watch_since = self._watch_from.timestamp()
        every = WATCH_EMBEDDED if backend.name == "embedded" else WATCH_HOSTED
        self.set_interval(every, self._watch_tick)  # type: ignore[attr-defined]

    def _watch_tick(self) -> None:
        if self.backend is not None and not self._watching:
            self._watching = True
            self.watch_operations()

    def _busy_spawning(self) -> bool:
        """One of this TUI's own runs or imports is being spawned: its row and follower do not exist yet."""
        return bool(self._posting_imports or getattr(self.backend, "spawning", 0))

    @work(group="operation-watch", exit_on_error=False, description="watching operations")
    async def watch_operations(self) -> None:
        started = time.perf_counter()
        try:
            if self._busy_spawning():
                return
            known = set(self.table.operations)  # type: ignore[attr-defined]
            found, newest = await self.backend.operations_since(self._watch_since - OVERLAP, known)
        except BackendError:
            return  # an outage: the link watch shows it; the next tick tries again
        finally:
            self._watching = False
            self.watch_ms.append((time.perf_counter() - started) * 1000)
        if self._busy_spawning():
            return  # a spawn began while listing: this listing may hold it; the next tick sees its row
        reload = False
        for op in sorted(found, key=lambda o: (o.created_at or datetime.min, o.uuid)):  # parents first
            if op.uuid in self.table.operations:  # type: ignore[attr-defined]
                continue
            if not op.running and not self._new_here(op):
                continue  # ended before the TUI started: the listing's (load), not news
            reload = self._adopt(op) or reload
        if newest is not None:
            self._watch_since = max(self._watch_since, newest)
        self._follow_unfollowed()
        if reload:
            self.load()  # type: ignore[attr-defined]

    def _new_here(self, op: Operation) -> bool:
        return op.created_at is not None and self._watch_from is not None and op.created_at >= self._watch_from

    def _adopt(self, op: Operation) -> bool:
        """A row for another client's operation; followed if running, its snapshot into the tree if it has
        ended. True if the tree needs a reload (an import's root, a result whose parent is not known here)."""
        self.buffers.setdefault(op.uuid, OutputBuffer())
        if op.running:
            op.duration = None  # the server's figure at the time it was read: the table counts on from its start
        tail = self.table.on_newest()  # type: ignore[attr-defined]
        self.table.upsert(op)  # type: ignore[attr-defined]
        if tail and op.uuid in self.table.rows:  # type: ignore[attr-defined]
            self.table.select(op.uuid)  # type: ignore[attr-defined]  # in view, its log followed
        self.tree.set_commands({op.uuid: op.command})  # type: ignore[attr-defined]
        self._operation_changed(op)  # type: ignore[attr-defined]
        if op.running:
            self._followed.add(op.uuid)  # now, not when the worker starts: no second follower
            self.follow_existing(op)  # type: ignore[attr-defined]
            return False
        if op.is_import:
            return bool(op.result) and op.result not in self.lineage.snapshots
        if op.result and op.result != op.image and op.image not in self.lineage.snapshots:
            return True
        self._add_result(op)  # type: ignore[attr-defined]
        return False

    def _follow_unfollowed(self) -> None:
        """Running rows nobody follows (listed by a load, before the TUI started): followed, so their state
        moves and their snapshot lands in the tree when they end."""
        for op in list(self.table.operations.values()):  # type: ignore[attr-defined]
            if op.running and op.uuid not in self._followed and op.uuid not in self._auto_followed:
                self._auto_followed.add(op.uuid)
                op.duration = None  # as in _adopt
                self._followed.add(op.uuid)
                self.follow_existing(op)  # type: ignore[attr-defined]
