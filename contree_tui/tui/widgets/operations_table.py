"""The operations table: one row per run, updated in place as its status changes (never cleared and refilled,
so the cursor and scroll position stay where the user left them).

The command column takes what the other columns leave of the pane; when commands need more to be told apart
(parallel runs sharing a long head), the less important columns give way (operations_cells.py). `/` filters
the rows (command, uuid, status), `s` cycles the sorts, enter jumps to the run's snapshot in the tree.
"""

from __future__ import annotations

from contree_client.models import OperationStatus
from rich.text import Text
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, CellType

from contree_tui.tui.model import Operation
from contree_tui.tui.outcome import op_icon, outcome_words
from contree_tui.tui.screens.prompt import PromptScreen
from contree_tui.tui.widgets.operations_cells import (
    COLUMNS,
    COMMAND_MIN,
    COMMAND_WIDTH,
    PENDING,
    STATUS_WIDTH,
    command_cell,
    command_need,
    command_room,
    departures,
    fitting_columns,
    format_cpu,
    format_duration,
    format_memory,
    images_cell,
    import_label,
    one_line,
    progress_cell,
)
from contree_tui.tui.widgets.operations_order import Sort, matches, ordered
from contree_tui.tui.widgets.snapshot_tree import Clock, utc_now
from contree_tui.tui.widgets.table_rows import update_rows

__all__ = ["COMMAND_MIN", "PENDING", "STATUS_WIDTH", "OperationsTable", "fitting_columns", "format_cpu",
           "format_duration", "format_memory", "import_label", "progress_cell", "snapshot_of"]

TITLE = "operations"


def snapshot_of(op: Operation, known: set[str] | dict[str, object]) -> str | None:
    """The snapshot an operation's row leads to: the one it made if the tree has it, else the one it ran on."""
    return next((uuid for uuid in (op.result, op.image) if uuid and uuid in known), None)


class OperationsTable(DataTable[CellType]):
    BINDINGS = [
        Binding("j,down", "cursor_down", "Down", show=False, id="ops.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="ops.up"),
        Binding("g,home", "scroll_top", "Top", show=False, id="ops.top"),
        Binding("G,end", "scroll_bottom", "Bottom", show=False, id="ops.bottom"),
        Binding("enter", "jump_snapshot", "Its snapshot", id="ops.snapshot"),
        Binding("slash", "filter", "Filter", id="ops.filter"),
        Binding("s", "cycle_sort", "Sort", id="ops.sort"),
    ]

    COMPONENT_CLASSES = {"operations-table--ok", "operations-table--failed", "operations-table--running"}

    class JumpToSnapshot(Message):
        """Enter on a row: show this operation's snapshot in the tree (the screen knows the tree)."""

        def __init__(self, operation: Operation) -> None:
            super().__init__()
            self.operation = operation

    def __init__(self, *, clock: Clock = utc_now, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.clock = clock
        self.operations: dict[str, Operation] = {}  # every one known, in the order they arrived
        self._shown: dict[str, dict[str, CellType]] = {}  # the cells as last set, by row
        self.shown_columns: tuple[str, ...] = tuple(key for key, _label, _width in COLUMNS)
        self.command_width = COMMAND_WIDTH
        self._departs: dict[str, int] = {}  # one-line command → where it departs from its most similar sibling
        self.filter_text = ""
        self._arrived_filtered: list[str] = []  # runs that arrived while the filter was on (hidden or not)
        self._told_hidden = False  # the toast about a new run the filter hides: once a filter
        self.sort = Sort.STARTED
        self._highlighted: str | None = None  # the row the screen last heard was under the cursor

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for key, label, width in COLUMNS:
            if key in self.shown_columns:
                self.add_column(label, key=key, width=self.command_width if key == "command" else width)

    # Layout: which columns, how wide the command --------------------------------------------------------

    def on_resize(self) -> None:
        self._lay_out()

    def _lay_out(self) -> bool:
        """Fit the columns to the pane and the commands; True if they changed (the rows were added again)."""
        width = self.size.width
        need = max((command_need(op.command, self._departs.get(one_line(op.command), 0))
                    for op in self.operations.values()), default=COMMAND_MIN)
        columns = fitting_columns(width, need)
        command_width = max(1, command_room(width, columns)) if width > 0 else COMMAND_WIDTH
        if (columns, command_width) == (self.shown_columns, self.command_width):
            return False
        # Rare (a terminal resize, a burst of runs that need more room): laid out afresh, cursor kept.
        self.shown_columns, self.command_width = columns, command_width
        self._fill(columns=True)
        return True

    def _fill(self, *, columns: bool = False) -> None:
        """Add the rows again, in the sort's order and through the filter (and the columns, if `columns`),
        the cursor on the row it was on."""
        selected = self.selected_uuid
        self.clear(columns=columns)
        self._shown.clear()
        if columns:
            self._add_columns()
        for op in self._order():
            cells = self._cells(op)
            self.add_row(*(cells[k] for k in self.shown_columns), key=op.uuid)
            self._shown[op.uuid] = cells
        if selected is not None:
            self.select(selected)
        self._title()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The rows added again put the cursor back on the same row: the screen hears of it once only (it
        shows that row's log from the bottom again, which would undo the user's scrolling)."""
        uuid = str(event.row_key.value)
        if uuid == self._highlighted:
            event.stop()
        self._highlighted = uuid

    def _order(self) -> list[Operation]:
        shown = (op for op in self.operations.values() if matches(op, self.filter_text))
        return ordered(shown, self.sort, elapsed=self._elapsed, kind=lambda op: op_icon(op)[1])

    def _reorder(self) -> None:
        """The rows again if the filter or the sort now wants others or another order."""
        wanted = [op.uuid for op in self._order()]
        if wanted != [str(row.key.value) for row in self.ordered_rows]:
            self._fill()

    # Rows -----------------------------------------------------------------------------------------------

    def upsert(self, op: Operation) -> None:
        """Add the operation's row, or bring its cells up to date."""
        new = op.uuid not in self.operations
        self.operations[op.uuid] = op
        if new:
            departs = departures(one_line(o.command) for o in self.operations.values())
            changed, self._departs = departs != self._departs, departs
            if self._lay_out():
                return
            if changed:  # a sibling's command: the others may have to show another part of theirs
                self._set_all({uuid: {"command": self._cells(self.operations[uuid])["command"]}
                               for uuid in self._shown})
        if op.uuid not in self.rows:
            if matches(op, self.filter_text):
                cells = self._cells(op)
                self.add_row(*(cells[k] for k in self.shown_columns), key=op.uuid)
                self._shown[op.uuid] = cells
                self._reorder()
            elif new:
                self._hidden_arrival(op.uuid)
            self._title()  # "(2 of 10)": one more either way
            return
        self._set_all({op.uuid: self._cells(op)})
        if self.filter_text or self.sort in (Sort.RUNNING, Sort.STATUS):
            self._reorder()  # its status may take it out of the filter or move it

    def _set_all(self, cells: dict[str, dict[str, CellType]]) -> None:
        """Only the cells that changed, and only they and their rows are drawn again (table_rows.py)."""
        changes: dict[str, dict[str, CellType]] = {}
        for uuid, row in cells.items():
            shown = self._shown.setdefault(uuid, {})
            changed = {column: value for column, value in row.items() if shown.get(column) != value}
            shown.update(changed)
            changes[uuid] = {column: value for column, value in changed.items() if column in self.shown_columns}
        update_rows(self, changes)

    def tick(self) -> None:
        """Running rows show their elapsed time; call this once a second."""
        self._set_all({op.uuid: {"duration": self._duration(op)} for op in self.operations.values()
                       if op.running and op.uuid in self.rows})
        if self.sort is Sort.DURATION:
            self._reorder()

    def _elapsed(self, op: Operation) -> float | None:
        if op.duration is None and op.running and op.created_at is not None:
            return max(0.0, (self.clock() - op.created_at).total_seconds())
        return op.duration

    def _duration(self, op: Operation) -> str:
        return format_duration(self._elapsed(op))

    def _command(self, text: str) -> Text:
        """A command as a cell: plain text (a `[red]` in it is not markup), cut to the column."""
        return Text(command_cell(text, self.command_width, self._departs.get(one_line(text), 0)))

    def _cells(self, op: Operation) -> dict[str, CellType]:
        if op.is_import:
            return self._import_cells(op)
        icon, kind = op_icon(op)
        # A run whose command failed still succeeded as an operation (and made a snapshot): its exit says so.
        status = Text(f"{icon} {outcome_words(op)}", style=self.get_component_rich_style(
            f"operations-table--{kind}", partial=True))
        images = Text(images_cell(op.image, op.result, op.disposable))
        exit_code = "" if op.exit_code is None else str(op.exit_code)
        failed = op.exit_code not in (None, 0)
        exit_cell = Text(exit_code, style=self.get_component_rich_style("operations-table--failed", partial=True)
                         if failed else "")
        cpu = PENDING if op.running else format_cpu(op.cpu_seconds)
        memory = PENDING if op.running else format_memory(op.memory_kb)
        return {"status": status, "images": images, "exit": exit_cell, "duration": self._duration(op),
                "cpu": cpu, "memory": memory, "command": self._command(op.command)}

    def _import_cells(self, op: Operation) -> dict[str, CellType]:
        """An import has no source image, exit code or rusage: its image column shows its progress, then the
        image it made; its command column what it imports and, while it runs, its step."""
        icon, kind = op_icon(op)
        # running, its phase instead of "executing": the command column that says more is the first cut
        state = op.step.split()[0] if op.running and op.step else op.status.value.lower()
        status = Text(f"{icon} {state}", style=self.get_component_rich_style(
            f"operations-table--{kind}", partial=True))
        if op.running:
            images = progress_cell(op.progress) if op.progress is not None else (op.step or "starting")
        else:
            images = f"→ {op.result[:8]}" if op.result and op.status is OperationStatus.SUCCESS else ""
        command = import_label(op.command) + (f" · {op.step}" if op.running and op.step else "")
        return {"status": status, "images": Text(images), "exit": "", "duration": self._duration(op),
                "cpu": "", "memory": "", "command": self._command(command)}

    # Cursor ---------------------------------------------------------------------------------------------

    def select(self, uuid: str) -> None:
        if uuid in self.rows:
            self.move_cursor(row=self.get_row_index(uuid))

    def on_newest(self) -> bool:
        """The cursor is on the newest row (or there is none), in an order by start: a new row from another
        client is then followed, as `tail -f` follows (operation_watch.py)."""
        if not self.rows:
            return True
        if self.sort is Sort.STARTED:
            return self.cursor_row == self.row_count - 1
        return self.sort is Sort.NEWEST and self.cursor_row == 0

    @property
    def selected_uuid(self) -> str | None:
        if not self.rows or self.cursor_row < 0:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except CellDoesNotExist:
            return None

    @property
    def running_count(self) -> int:
        return sum(1 for op in self.operations.values() if op.running)

    # Keys -----------------------------------------------------------------------------------------------

    def action_jump_snapshot(self) -> None:
        op = self.operations.get(self.selected_uuid or "")
        if op is not None:
            self.post_message(self.JumpToSnapshot(op))

    def action_filter(self) -> None:
        self.app.push_screen(PromptScreen("Filter operations", self.filter_text,
                                          placeholder="text in the command, the uuid or the status",
                                          detail="empty shows every operation again"),
                             lambda text: None if text is None else self.set_filter(text))

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self._arrived_filtered.clear()
        self._told_hidden = False
        self._fill()

    def _hidden_arrival(self, uuid: str) -> None:
        """A new run the filter hides: the title counts it (highlighted) and the first one a filter hides is
        a toast too, as a filter left on from an hour ago is easy to forget (lazygit keeps its filter in the
        pane's title for the same reason; k9s in the table's title)."""
        if not self.filter_text:
            return
        self._arrived_filtered.append(uuid)
        if not self._told_hidden:
            self._told_hidden = True
            self.notify(f"a new run is hidden by the filter /{self.filter_text}: / then enter on an empty line "
                        "shows every run", title="operations", severity="warning", markup=False)

    @property
    def hidden_new(self) -> int:
        """Runs that arrived while the filter was on and that it hides now."""
        return sum(1 for uuid in self._arrived_filtered if uuid not in self.rows)

    def action_cycle_sort(self) -> None:
        self.set_sort(self.sort.next())

    def set_sort(self, sort: Sort) -> None:
        self.sort = sort
        self._fill()

    def _title(self) -> None:
        """`operations · /exit (2 of 9) · 2 new hidden · sort: running first`; plain `operations` without
        either. New runs the filter hides are counted in the warning colour: nothing else shows them."""
        parts: list[str | tuple[str, str]] = [TITLE]
        if self.filter_text:
            parts.append(f"/{self.filter_text} ({self.row_count} of {len(self.operations)})")
            if hidden := self.hidden_new:
                parts.append((f"{hidden} new hidden", "$text-warning bold"))
        if self.sort is not Sort.STARTED:
            parts.append(f"sort: {self.sort.value}")
        title = Content(" · ").join(Content.assemble(part) for part in parts)  # a `[` filtered is no markup
        if title.markup != self.border_title:  # setting it, even to the same text, redraws the whole table
            self.border_title = title
