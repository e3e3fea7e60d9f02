"""`@`: the session's command log in a modal, newest last: time, kind, what was typed or done, and its result."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from contree_tui.tui.command_log import CommandLog, Outcome

OUTCOME_STYLE = {Outcome.OK: "green", Outcome.FAILED: "red", Outcome.PENDING: "yellow"}


class CommandLogScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,at", "dismiss(None)", "Close", id="command-log.close")]

    def __init__(self, log: CommandLog) -> None:
        super().__init__()
        self.command_log = log

    def compose(self) -> ComposeResult:
        with Vertical(id="command-log"):
            yield Static("command log", id="command-log-title")
            yield DataTable(id="command-log-table", cursor_type="row", zebra_stripes=True)
            yield Static("esc closes", id="command-log-footer")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("time", "kind", "command", "result")
        for entry in self.command_log.entries:
            table.add_row(local_time(entry.at), entry.kind, entry.text,
                          Text(entry.result or entry.outcome.value, style=OUTCOME_STYLE[entry.outcome]))
        if table.row_count:
            table.move_cursor(row=table.row_count - 1)
        table.focus()

    def rows(self) -> list[list[str]]:
        """The table as plain text (what a user reads; tests read it too)."""
        table = self.query_one(DataTable)
        return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def local_time(at: datetime) -> str:
    return at.astimezone().strftime("%H:%M:%S")
