"""Imports in the operations table: `:import`'s own, and those another client starts while the TUI runs
(`contree-tui import` in another terminal, an SDK), a row each, followed alike (its bar moves, its log
fills), its image a root of the tree once it ends. A mixin of MainScreen, kept apart so the screen's module
stays about layout, loading and following.

Runs started elsewhere show on the next load (`R`); imports are watched because one is slow and its bar is
the point: one listing of the newest imports every few seconds (1.7 ms a request on the embedded engine's
socket, measured with 20 listed: 0.06% of a 3 s period), quiet while the link is down (the banner says so).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contree_client.models import OperationStatus
from textual import work

from contree_tui.client.image_import import ImportProgress, ImportResult
from contree_tui.client.operations import EventCursor
from contree_tui.client.records import IMPORT_KIND, import_command
from contree_tui.tui.backend_error import BackendError
from contree_tui.tui.command_log import LogEntry
from contree_tui.tui.model import Operation, OutputBuffer, Stream
from contree_tui.tui.verbs import Import
from contree_tui.tui.widgets.operations_table import format_duration

WATCH_EMBEDDED = 3.0  # seconds between listings
WATCH_HOSTED = 15.0


class ImportWatch:
    """Mixed into MainScreen: uses its backend, table, buffers, `_followed`, `follow_existing`, `load` and
    CommandVerbs' `_carry_out` (`submit_line` dispatches `:import` here); MainScreen's `_follow` reads an
    import's events with `_follow_import`."""

    backend: Any
    _followed: set[str]

    def _init_import_watch(self) -> None:
        self._watching = False
        self._watch_from: datetime | None = None  # imports created since then are new to this session
        self._posting_imports = 0  # `:import` requests sent and not answered yet

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

    def _verb_import(self, verb: Import, entry: LogEntry) -> None:
        self._carry_out(entry, f"cannot import {verb.ref}", self._import(verb.ref, verb.tag))

    async def _import(self, ref: str, tag: str | None) -> str:
        """Start the import and show it as a row of the operations table: its bar moves with the bytes
        fetched, its log holds the engine's lines. A success puts its image into the tree (a root, with its
        tag). Imports run side by side, each in its own worker (the "verb" group is not exclusive)."""
        backend = self._backend()
        self._posting_imports += 1  # watch_imports keeps off until this uuid has its row and follower
        try:
            uuid = await backend.import_image(ref, tag)  # the engine resolves bare names to docker://
        finally:
            self._posting_imports -= 1
        op = Operation(uuid=uuid, command=import_command(ref, tag), image=None, kind=IMPORT_KIND,
                       created_at=self.clock())
        self.buffers.setdefault(uuid, OutputBuffer())
        self._followed.add(uuid)  # this worker reads its events: selecting the row must not start another
        self.table.upsert(op)
        self.table.select(uuid)
        self._operation_changed(op)
        result = await self._follow_import(op)
        if not result.succeeded:
            raise BackendError(f"the import of {ref} ended {result.status.value.lower()}"
                               + (f": {result.error}" if result.error else ""))
        self.load()  # the tree shows the image (learned by follow_import) where the lineage puts it: a root
        return f"imported {ref} as {(result.image or '')[:8]}" + (f" (tag {result.tag})" if result.tag else "")

    async def _follow_import(self, op: Operation) -> ImportResult:
        """Read an import's events into its row and log until it ends, from the last event its log holds
        (one started here, by another client, or before the TUI: all alike); then its real final state from
        the server, which a stream broken by an engine restart may never have carried."""
        backend = self._backend()
        buffer = self.buffers.setdefault(op.uuid, OutputBuffer())
        cursor = EventCursor(buffer.last_event_id)
        self._followed.add(op.uuid)

        def on_change(progress: ImportProgress, line: str | None) -> None:
            buffer.last_event_id = cursor.last_event_id
            if line is not None:
                buffer.add_line(Stream.STDOUT, line)
            op.progress, op.step = progress.fraction, progress.step
            if progress.phase is not None and op.status is OperationStatus.PENDING:
                op.status = OperationStatus.EXECUTING
            self._operation_changed(op)

        try:
            result = await backend.follow_import(op.uuid, on_change, cursor)
        finally:
            self._followed.discard(op.uuid)
        op.status, op.error, op.result = result.status, result.error, result.image
        if result.duration is not None:
            op.duration = result.duration
        elif op.created_at is not None:
            op.duration = (self.clock() - op.created_at).total_seconds()
        if not buffer.complete:
            buffer.close()
            buffer.add_line(Stream.META, import_summary(op))
            buffer.complete = True
        self._operation_changed(op)
        return result


def import_summary(op: Operation) -> str:
    """The last line of an import's log: `── SUCCESS · 1.20s → 3f2a9c1d` (an import has no exit code: the
    operation's status is the news, in the API's word)."""
    parts = [op.status.value, format_duration(op.duration)]
    if op.result and op.status is OperationStatus.SUCCESS:
        parts.append(f"→ {op.result[:8]}")
    if op.error:
        parts.append(op.error)
    return "── " + " · ".join(p for p in parts if p)
