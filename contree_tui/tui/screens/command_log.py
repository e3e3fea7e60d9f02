"""`@`: the session's command log in a modal, newest last: time, kind, the working snapshot it left (● the
current one), what was typed or done and its result. It is the undo/redo list: `enter` on an entry makes its
snapshot working (the main screen records that as a new entry, so the jump is undone the same way)."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from contree_tui.tui.command_log import CommandLog, LogEntry, Outcome

OUTCOME_STYLE = {Outcome.OK: "green", Outcome.FAILED: "red", Outcome.PENDING: "yellow"}


class CommandLogScreen(ModalScreen[LogEntry | None]):
    """Dismissed with the entry to jump to, or None."""

    BINDINGS = [
        Binding("escape,q,at", "dismiss(None)", "Close", id="command-log.close"),
        Binding("enter", "jump", "Make the entry's snapshot working (a new entry: undo the same way)",
                id="command-log.jump"),
    ]

    def __init__(self, log: CommandLog, working: str | None = None) -> None:
        super().__init__()
        self.command_log = log
        self.working = working
        self._entries: list[LogEntry] = []  # the rows as shown (the log may grow while open)

    def compose(self) -> ComposeResult:
        with Vertical(id="command-log"):
            yield Static("command log · undo/redo list", id="command-log-title")
            yield DataTable(id="command-log-table", cursor_type="row", zebra_stripes=True)
            yield Static("enter makes the entry's snapshot working · esc closes", id="command-log-footer")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("time", "kind", "snapshot", "command", "result")  # snapshot before the long ones
        self._entries = list(self.command_log.entries)
        for entry in self._entries:
            table.add_row(local_time(entry.at), entry.kind, self._snapshot_cell(entry), entry.text,
                          Text(entry.result or entry.outcome.value, style=OUTCOME_STYLE[entry.outcome]))
        if table.row_count:
            table.move_cursor(row=table.row_count - 1)
        table.focus()

    def _snapshot_cell(self, entry: LogEntry) -> Text:
        if entry.snapshot is None:
            return Text("")
        if entry.snapshot == self.working:
            return Text(f"● {entry.snapshot[:8]}", style="bold")
        return Text(f"  {entry.snapshot[:8]}")

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_jump()

    def action_jump(self) -> None:
        row = self.query_one(DataTable).cursor_row
        if 0 <= row < len(self._entries):
            self.dismiss(self._entries[row])

    def rows(self) -> list[list[str]]:
        """The table as plain text (what a user reads; tests read it too)."""
        table = self.query_one(DataTable)
        return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def local_time(at: datetime) -> str:
    return at.astimezone().strftime("%H:%M:%S")
