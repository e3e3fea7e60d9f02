"""Imports another client starts while the TUI runs (`contree-tui import` in another terminal, an SDK): a row
each, followed like `:import`'s own (its bar moves, its log fills), its image a root of the tree once it
ends. A mixin of MainScreen, kept apart so the screen's module stays about layout, loading and following.

Runs started elsewhere show on the next load (`R`); imports are watched because one is slow and its bar is
the point: one listing of the newest imports every few seconds (1.7 ms a request on the embedded engine's
socket, measured with 20 listed: 0.06% of a 3 s period), quiet while the link is down (the banner says so).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from textual import work

from contree_tui.tui.backend_error import BackendError
from contree_tui.tui.model import OutputBuffer

WATCH_EMBEDDED = 3.0  # seconds between listings
WATCH_HOSTED = 15.0


class ImportWatch:
    """Mixed into MainScreen: uses its backend, table, buffers, `_followed`, `follow_existing` and `load`."""

    backend: Any
    _followed: set[str]
    _posting_imports: int

    def _init_import_watch(self) -> None:
        self._watching = False
        self._watch_from: datetime | None = None  # imports created since then are new to this session

    def _attach_import_watch(self, backend: Any) -> None:
        if not hasattr(backend, "recent_imports"):  # a frozen backend in tests
            return
        self._watch_from = self.clock()
        self.set_interval(WATCH_EMBEDDED if backend.name == "embedded" else WATCH_HOSTED, self._watch_tick)

    def _watch_tick(self) -> None:
        if self.backend is not None and not self._watching:
            self._watching = True
            self.watch_imports()

    @work(group="import-watch", exit_on_error=False, description="watching imports")
    async def watch_imports(self) -> None:
        try:
            known = set(self.table.operations)
            found = await self.backend.recent_imports(known)
        except BackendError:
            return  # an outage: the link watch shows it; the next tick tries again
        finally:
            self._watching = False
        if self._posting_imports:
            return  # one of them may be `:import`'s own, whose worker has not made its row yet
        ended = False
        for op in found:
            new = op.created_at is not None and self._watch_from is not None and op.created_at >= self._watch_from
            if op.uuid in self.table.operations or not (op.running or new):
                continue  # one that ended before the TUI started is the listing's (load), not news
            self.buffers.setdefault(op.uuid, OutputBuffer())
            self._operation_changed(op)
            if op.running and op.uuid not in self._followed:
                self._followed.add(op.uuid)  # now, not when the worker starts: no second follower
                self.follow_existing(op)
            ended = ended or not op.running
        if ended:
            self.load()  # its image: a root of the tree
