"""`:import REF [TAG]` in the TUI: the import started, shown as a row of the operations table with its progress
bar and log, its image put into the tree when it succeeds; and the follower of an import's events, which
MainScreen's `_follow` uses for any import it follows (its own, or another client's: operation_watch.py).
A mixin of MainScreen, through CommandVerbs (whose `submit_line` dispatches `:import` here).
"""

from __future__ import annotations

from typing import Any

from contree_client.models import OperationStatus

from contree_tui.client.image_import import ImportProgress, ImportResult
from contree_tui.client.operations import EventCursor
from contree_tui.client.records import IMPORT_KIND, import_command
from contree_tui.tui.backend_error import BackendError
from contree_tui.tui.command_log import LogEntry
from contree_tui.tui.model import Operation, OutputBuffer, Stream
from contree_tui.tui.verbs import Import
from contree_tui.tui.widgets.operations_table import format_duration


class ImportVerbs:
    """A base of CommandVerbs (which calls `_init_import_verbs`): uses MainScreen's backend, table, buffers,
    `_followed`, `_operation_changed` and `load`, and CommandVerbs' `_carry_out`."""

    backend: Any
    _followed: set[str]

    def _init_import_verbs(self) -> None:
        self._posting_imports = 0  # `:import` requests sent and not answered yet (operation_watch.py waits)

    def _verb_import(self, verb: Import, entry: LogEntry) -> None:
        self._carry_out(entry, f"cannot import {verb.ref}", self._import(verb.ref, verb.tag))

    async def _import(self, ref: str, tag: str | None) -> str:
        """Start the import and show it as a row of the operations table: its bar moves with the bytes
        fetched, its log holds the engine's lines. A success puts its image into the tree (a root, with its
        tag). Imports run side by side, each in its own worker (the "verb" group is not exclusive)."""
        backend = self._backend()
        self._posting_imports += 1  # operation_watch.py keeps off until this uuid has its row and follower
        try:
            uuid = await backend.import_image(ref, tag)  # the engine resolves bare names to docker://
        finally:
            self._posting_imports -= 1
        getattr(backend, "spawned", set()).add(uuid)  # this session's own: `:wait` waits for it
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
