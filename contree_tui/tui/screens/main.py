"""The main screen: snapshot tree | operations + log, the command bar and the status bar. It owns the session
state (lineage, working position, output buffers) and runs every network call in an async worker; widgets
only display and post messages up here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from contree_client.models import OperationStatus
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable
from textual.worker import Worker, WorkerState

from contree_tui.client.position import PositionError
from contree_tui.tui.command_log import LogEntry
from contree_tui.tui.data import Backend, Completed, Exited, Output, Started, WorkingSnapshot, describe_error
from contree_tui.tui.gc_pacing import CollectionPacer
from contree_tui.tui.messages import Connected, LinkChanged, OperationUpdated
from contree_tui.tui.model import Lineage, Operation, OutputBuffer, Position, Snapshot, Stream
from contree_tui.tui.outcome import outcome
from contree_tui.tui.screens.command_verbs import CommandVerbs
from contree_tui.tui.screens.diff_verbs import DiffVerbs
from contree_tui.tui.screens.link_watch import LinkWatch
from contree_tui.tui.screens.operation_watch import OperationWatch
from contree_tui.tui.screens.pane_cycle import PaneCycle
from contree_tui.tui.screens.pipeline_verbs import PipelineVerbs
from contree_tui.tui.screens.position_watch import PositionWatch
from contree_tui.tui.screens.snapshot_detail import SnapshotDetailScreen
from contree_tui.tui.screens.split_logs import SplitLogsScreen
from contree_tui.tui.screens.sync_verbs import SyncVerbs
from contree_tui.tui.type_ahead import focus_now, pasted_command
from contree_tui.tui.widgets.command_bar import CommandBar
from contree_tui.tui.widgets.connection_banner import ConnectionBanner
from contree_tui.tui.widgets.key_footer import KeyFooter
from contree_tui.tui.widgets.log_panel import LogPanel
from contree_tui.tui.widgets.operations_table import OperationsTable, format_duration, snapshot_of
from contree_tui.tui.widgets.snapshot_tree import Clock, SnapshotTree, utc_now
from contree_tui.tui.widgets.status_bar import StatusBar

DEFAULT_BASE_TAG = "busybox:latest"  # the embedded engine's built-in image: where a fresh session starts
RECENT_OPERATIONS = 30


class MainScreen(PositionWatch, LinkWatch, OperationWatch, SyncVerbs, DiffVerbs, PipelineVerbs, CommandVerbs,
                 PaneCycle, Screen[None]):
    BINDINGS = [
        Binding("colon", "command_bar", "Command", id="command-bar"),
        Binding("c,ctrl+c", "interrupt", "Interrupt the operation (again: cancel)", show=False, id="interrupt"),
        Binding("at", "command_log", "Command log", show=False, id="command-log"),
        Binding("u", "rollback", "Roll back", id="rollback"),
        Binding("U", "forward", "Forward", id="forward"),
        Binding("R", "reload", "Reload", show=False, id="reload"),
        Binding("D", "diff_mark", "Compare two snapshots (D on one, D on the other)", show=False, id="diff-mark"),
        Binding("escape", "focus_tree", "Tree", show=False, id="focus-tree"),
        Binding("v", "split_logs", "Side by side", id="split-logs"),  # screens/split_logs.py
    ]

    def __init__(self, *, clock: Clock = utc_now, working: str | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.backend: Backend | None = None
        self.lineage = Lineage()
        self.position: WorkingSnapshot = Position()  # the backend's, once connected
        self._start_on = working
        self.buffers: dict[str, OutputBuffer] = {}
        self._followed: set[str] = set()  # operations whose events a worker is reading
        self._init_command_verbs()
        self._init_link_watch()
        self._init_operation_watch()

    def compose(self) -> ComposeResult:
        yield ConnectionBanner(id="connection-banner")
        with Horizontal(id="body"):
            yield SnapshotTree(id="tree", clock=self.clock)
            with Vertical(id="right"):
                yield OperationsTable(id="operations", clock=self.clock)
                yield LogPanel(id="log-panel")
        yield CommandBar(id="command-bar")
        yield StatusBar(id="status")
        yield KeyFooter()  # keeps : u U ? q when the width runs out (key_footer.py)

    def on_mount(self) -> None:
        self.tree.border_title = "snapshots"
        self.table.border_title = "operations"
        self.query_one(LogPanel).border_title = "log"
        self.tree.focus()
        self.log_panel.host = self  # the operations, their buffers and colours, for `m` and the split view
        self.set_interval(1.0, self.table.tick)
        self.set_interval(30.0, self.tree.refresh_labels)  # ages move on
        self._collections = CollectionPacer(lambda: self.table.running_count > 0)  # no full GC while runs stream
        self.set_interval(1.0, self._collections.tick)

    def on_unmount(self) -> None:
        self._collections.close()

    @property
    def tree(self) -> SnapshotTree:
        return self.query_one(SnapshotTree)

    @property
    def table(self) -> OperationsTable:
        return self.query_one(OperationsTable)

    @property
    def status_bar(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def log_panel(self) -> LogPanel:
        return self.query_one(LogPanel)

    # Connecting and loading -----------------------------------------------------------------------------

    def on_connected(self, message: Connected) -> None:
        self.backend = message.backend
        self.position = message.backend.position
        self.status_bar.target = message.backend.name
        self.status_bar.link = message.backend.status.value
        message.backend.status.subscribe(lambda state: self.post_message(LinkChanged(state)))
        self._attach_command_verbs(message.backend)
        self._attach_sync(message.backend)
        self._attach_link_watch(message.backend)
        self._attach_operation_watch(message.backend)  # every client's operations (operation_watch.py)
        self._attach_position_watch(message.backend)  # another client's moves, followed (position_watch.py)
        self.load()

    def on_link_changed(self, message: LinkChanged) -> None:
        self.status_bar.link = message.state
        self._link_changed(message.state)  # the banner, the toasts, resuming after an outage (link_watch.py)

    @work(exclusive=True, group="load", exit_on_error=False, description="loading snapshots")
    async def load(self) -> None:
        backend = self._backend()
        lineage = await backend.lineage()
        recent = await backend.recent_operations(RECENT_OPERATIONS)
        for op in self.table.operations.values():  # this session's runs, newer than the listing
            lineage.note_operation(op)
        self.lineage = lineage
        wanted = self._start_on or self.position.working
        self._start_on = None
        if wanted not in lineage.snapshots:
            wanted = default_working(lineage)
        if wanted and wanted != self.position.working:
            self.position.move_to(wanted)
        self.tree.load(lineage, self.position.working)
        self.tree.set_commands({op.uuid: op.command for op in recent})
        for op in recent:
            if op.uuid not in self.table.operations:
                self.table.upsert(op)
                lineage.note_operation(op)
                if op.is_import and op.running and op.uuid not in self._followed:
                    # another client's import (or one from before the TUI): its bar moves only if its events
                    # are read, and imports are few, so each is followed at once, as `:import` follows its own
                    self._followed.add(op.uuid)
                    self.follow_existing(op)
        self._show_working()
        self.status_bar.running = self.table.running_count
        if self.table.row_count and self.log_panel.view.buffer is None:
            self.table.move_cursor(row=self.table.row_count - 1)

    def action_reload(self) -> None:
        self.load()

    def _backend(self) -> Backend:
        if self.backend is None:
            raise RuntimeError("not connected yet")
        return self.backend

    @on(SnapshotTree.NeedCommands)
    def _need_commands(self, message: SnapshotTree.NeedCommands) -> None:
        if self.backend is not None:
            self.fetch_commands(message.operations)

    @work(group="commands", exit_on_error=False, description="reading snapshot commands")
    async def fetch_commands(self, operations: list[str]) -> None:
        self.tree.set_commands(await self._backend().commands(operations))

    # Running --------------------------------------------------------------------------------------------

    @on(CommandBar.Run)
    def _run(self, message: CommandBar.Run) -> None:
        self.submit_line(message.command)  # a shell command or a :verb (command_verbs.py)

    @on(CommandBar.Left)
    def _left_bar(self) -> None:
        self.tree.focus()

    @work(group="run", exit_on_error=False, description="run")
    async def run_command(self, command: str, image: str, *, branch: bool = False,
                          entry: LogEntry | None = None) -> None:
        """`branch`: a :parallel branch, which never moves the working snapshot."""
        try:
            op = await self._backend().run(command, image, **await self.run_options())
        except Exception as exc:
            self.run_failed(entry, exc)
            raise
        op.created_at = op.created_at or self.clock()
        self.buffers[op.uuid] = OutputBuffer()
        self.table.upsert(op)
        self.table.select(op.uuid)
        self._operation_changed(op)
        await self._follow(op)
        made = op.status is OperationStatus.SUCCESS and op.result is not None and op.result != op.image
        # The position follows the run only if it is still where the run started (the user may have moved).
        moved = self.position.record_run(image, op.result if made else None, operation=op.uuid,
                                         command=op.command, exit_code=op.exit_code, move=not branch)
        self.run_finished(entry, op, moved)
        if not moved and not branch:
            self.tell_diverted(op.command, image, op.result if made else None)  # no silent fork
        if moved:
            self._show_working()
        if op.status is not OperationStatus.SUCCESS:
            reason = op.error or op.status.value.lower()
            self.notify(f"{short_command(op.command)}: {reason}", title="run failed", severity="error")
        elif (near_miss := self.near_miss(op)) is not None:
            self.notify(near_miss, title="command not found", severity="warning", timeout=10)
        elif op.timed_out:
            undo = "; u rolls back" if moved else ""
            self.notify(f"{short_command(op.command)} timed out and was killed{undo}", title="timed out",
                        severity="warning")
        elif op.exit_code not in (None, 0):  # before "no change": `nosuch` exits 127 and changes no file
            undo = "; u rolls back" if moved else "; no new snapshot" if not made else ""
            self.notify(f"{short_command(op.command)} exited {op.exit_code}{undo}",
                        title="command failed", severity="warning")
        elif not made and not op.disposable:
            self.notify(f"{short_command(op.command)} changed no file: no new snapshot", title="no change")

    async def _follow(self, op: Operation) -> None:
        """Read the operation's events into its buffer until it completes."""
        if op.is_import:  # progress and log lines, then its state from the server (import_verbs.py)
            result = await self._follow_import(op)
            if result.succeeded and op.result and op.result not in self.lineage.snapshots:
                self.load()  # another client's import just ended: its image, a root of the tree
            return
        buffer = self.buffers.setdefault(op.uuid, OutputBuffer())
        self._followed.add(op.uuid)
        try:
            async for event_id, event in self._backend().follow(op.uuid, buffer.last_event_id):
                buffer.last_event_id = event_id
                if isinstance(event, Output | Started):
                    if isinstance(event, Output):
                        buffer.feed(event.stream, event.text, event.ts)
                    if op.status is not OperationStatus.EXECUTING and not op.status.is_terminal():
                        op.status = OperationStatus.EXECUTING
                        self._operation_changed(op)
                elif isinstance(event, Exited):
                    op.exit_code, op.timed_out = event.code, event.timed_out
                    op.cpu_seconds = event.cpu_seconds if event.cpu_seconds is not None else op.cpu_seconds
                    op.memory_kb = event.memory_kb if event.memory_kb is not None else op.memory_kb
                    self._operation_changed(op)
                elif isinstance(event, Completed):
                    op.status, op.error, op.duration = event.status, event.error, event.duration
                    op.result = None if op.disposable else event.result
                    buffer.close()
                    buffer.add_line(Stream.META, exit_summary(op))
                    buffer.complete = True
                    self._add_result(op)
                    self._operation_changed(op)
        finally:
            self._followed.discard(op.uuid)

    def _add_result(self, op: Operation) -> None:
        """A run that ended with a new image (this session's, or one watched live): into the tree."""
        if op.status is not OperationStatus.SUCCESS or not op.result or op.result == op.image:
            return
        if op.result not in self.lineage.snapshots:
            self.lineage.add(Snapshot(uuid=op.result, parent=op.image, created_at=self.clock(), operation=op.uuid))
            self.tree.set_commands({op.uuid: op.command})
            self.tree.add_snapshot(op.result)

    @work(exit_on_error=False, description="reading the log")
    async def follow_existing(self, op: Operation) -> None:
        await self._follow(op)

    def _operation_changed(self, op: Operation) -> None:
        self.post_message(OperationUpdated(op))

    def on_operation_updated(self, message: OperationUpdated) -> None:
        op = message.operation
        self.table.upsert(op)
        self.lineage.note_operation(op)
        if op.result in self.lineage.snapshots:  # a node shows its producer's outcome; a run going has none yet
            self.tree.refresh_labels()
        self.status_bar.running = self.table.running_count

    @on(OperationsTable.JumpToSnapshot)
    def _jump_to_snapshot(self, message: OperationsTable.JumpToSnapshot) -> None:
        target = snapshot_of(message.operation, self.lineage.snapshots)
        if target is None or not self.tree.jump_to(target):
            self.notify("its snapshot is not in the tree", title="operation", severity="warning")
            return
        self.tree.focus()

    @on(DataTable.RowHighlighted, "#operations")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        uuid = str(event.row_key.value)
        op = self.table.operations.get(uuid)
        if op is None:
            return
        buffer = self.buffers.setdefault(uuid, OutputBuffer())
        self.log_panel.show(f"{short_command(op.command, 60)} · {uuid[:8]}", buffer, key=uuid)
        if not buffer.complete and uuid not in self._followed and self.backend is not None:
            self.follow_existing(op)

    def running_logs(self) -> list[tuple[str, OutputBuffer]]:
        """The running operations' buffers, for the merged log (`m`); their events are read from now on."""
        logs = []
        for op in list(self.table.operations.values()):
            if not op.running:
                continue
            buffer = self.buffers.setdefault(op.uuid, OutputBuffer())
            if not buffer.complete and op.uuid not in self._followed and self.backend is not None:
                self._followed.add(op.uuid)  # now, not when the worker starts: the next call must not start another
                self.follow_existing(op)
            logs.append((op.uuid, buffer))
        return logs

    # Working snapshot -----------------------------------------------------------------------------------

    @on(SnapshotTree.Inspect)
    def _inspect(self, message: SnapshotTree.Inspect) -> None:
        self.inspect_snapshot(message.uuid)

    def inspect_snapshot(self, uuid: str) -> None:
        """The snapshot detail view: its files, grep, and the diff against its parent."""
        snapshot = self.lineage.get(uuid)
        if self.backend is None or snapshot is None:
            self.notify("not connected yet", title="cannot inspect", severity="error")
            return
        self.app.push_screen(SnapshotDetailScreen(
            self.backend.files, snapshot, self.lineage.get(snapshot.parent),
            command=self.tree.commands.get(snapshot.operation or ""), folder=getattr(self.app, "folder", None)))

    @on(SnapshotTree.Chosen)
    def _chosen(self, message: SnapshotTree.Chosen) -> None:
        before = self.position.working
        if self._moved(lambda: self.position.move_to(message.uuid)):
            self._show_working(move_cursor=False)
            if message.uuid != before:  # an entry of `@`: enter on the one before it goes back
                self.log_move("jump", f"enter: {self.snapshot_words(message.uuid)}", f"working {message.uuid[:8]}",
                              message.uuid)

    def _moved(self, move: Callable[[], object]) -> bool:
        """Make a position move; a refused one (or a store that cannot be written) is a toast."""
        try:
            move()
        except (PositionError, sqlite3.Error) as exc:
            self.notify(str(exc), title="cannot move", severity="error")
            return False
        return True

    def _show_working(self, *, move_cursor: bool = True) -> None:
        working = self.position.working
        self.tree.set_working(working, move_cursor=move_cursor)
        snapshot = self.lineage.get(working)
        self.status_bar.working = snapshot.name if snapshot else (working or "")[:8]

    def action_rollback(self) -> None:
        """`u`, at once: nothing is destroyed (the working pointer moves to the parent; `U` moves it back), so
        no question; a toast names where it went and how to undo."""
        working = self.position.working
        snapshot = self.lineage.get(working)
        if snapshot is None:
            self.notify("no working snapshot", title="cannot roll back", severity="warning")
            return
        parent = self.lineage.get(snapshot.parent)
        if parent is None:
            self.notify(f"{snapshot.name} has no parent", title="cannot roll back", severity="warning")
            return
        if self._moved(lambda: self.position.rollback(parent.uuid)):
            self._show_working()
            self.log_move("rollback", f"u: {snapshot.name} → {parent.name}", f"working {parent.short}", parent.uuid)
            self.notify(f"working: {self.snapshot_words(parent.uuid)} · U goes forward to {snapshot.short}",
                        title="rolled back")

    def action_forward(self) -> None:
        target: list[str | None] = []
        if not self._moved(lambda: target.append(self.position.forward())):
            return
        if target[0] is None:
            self.notify("nothing to go forward to (u rolls back first)", title="forward", severity="warning")
            return
        self._show_working()
        self.log_move("forward", "U", f"working {target[0][:8]}", target[0])
        self.notify(f"working: {self.snapshot_words(target[0])} · u rolls back again", title="forward")

    def action_command_bar(self) -> None:
        focus_now(self.query_one(CommandBar))  # the keys typed in the same burst go to the bar (type_ahead.py)

    def on_paste(self, event: events.Paste) -> None:
        """A `:line` pasted on a pane opens the bar with the line (an input keeps its own pastes)."""
        if (line := pasted_command(event.text)) is not None:
            event.stop()
            bar = self.query_one(CommandBar)
            focus_now(bar)
            bar.value, bar.cursor_position = line, len(line)

    def action_split_logs(self) -> None:
        self.app.push_screen(SplitLogsScreen(self))

    def action_focus_tree(self) -> None:
        self.tree.focus()

    # Failures -------------------------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every failed worker is a toast with its reason (workers run with exit_on_error=False)."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.notify(describe_error(event.worker.error), title=f"{event.worker.description} failed",
                        severity="error", timeout=8)


def default_working(lineage: Lineage) -> str | None:
    base = lineage.by_tag(DEFAULT_BASE_TAG)
    if base is not None:
        return base.uuid
    roots = lineage.roots()
    return roots[0].uuid if roots else None


def short_command(command: str | None, width: int = 40) -> str:
    one_line = " ".join((command or "").split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


def exit_summary(op: Operation) -> str:
    """`── ✗ exit 3 · 0.02s → 3f2a9c1d`: the outcome as the table and the command log word it (outcome.py)."""
    parts = [outcome(op)]
    if op.duration is not None:
        parts.append(format_duration(op.duration))
    if op.result and op.result != op.image:
        parts.append(f"→ {op.result[:8]}")
    elif op.result:
        parts.append("no change")
    if op.error:
        parts.append(op.error)
    return "── " + " · ".join(parts)
