"""The operations table: one row per run, updated in place as its status changes (never cleared and refilled,
so the cursor and scroll position stay where the user left them)."""

from __future__ import annotations

from contree_client.models import OperationStatus
from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from contree_tui.tui.model import Operation
from contree_tui.tui.outcome import op_icon, outcome_words
from contree_tui.tui.widgets.snapshot_tree import Clock, utc_now

# The command goes last: it is the one column that may be cut when the pane is narrow.
STATUS_WIDTH = 11
COLUMNS = (("status", "status", STATUS_WIDTH), ("images", "image → result", 19), ("exit", "exit", 4),
           ("duration", "time", 7), ("cpu", "cpu", 5), ("memory", "mem", 5), ("command", "command", None))
PENDING = "—"  # CPU and memory come with the process's exit (its rusage): none while it runs
COMMAND_WIDTH = 40
# When the pane is narrow (at 80 columns it is ~42 cells: the fixed columns alone took 65), columns go in this
# order until the command has COMMAND_MIN cells: status and command are what tells runs apart.
DROP_ORDER = ("exit", "memory", "cpu", "images", "duration")  # exit first: the status says `✗ exit 3`
COMMAND_MIN = 24
CELL_PADDING = 2  # DataTable's cell_padding (1) on each side of every column
IMPORT_BAR = 12  # cells of an import's bar in the image column (19 wide): the bar, a space, "100%"


def progress_cell(fraction: float, width: int = IMPORT_BAR) -> str:
    """`███████░░░░░  58%`: bytes an import fetched of all it fetches."""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled) + f" {fraction * 100:3.0f}%"


def import_label(command: str) -> str:
    """An import's command cell, its tag first: `import REF as TAG` (records.import_command) reads
    `import TAG ← REF`. At 160 columns the cell shows ~21 cells, and a long path hid the tag it makes."""
    one_line = " ".join(command.split())
    ref, found, tag = one_line.removeprefix("import ").rpartition(" as ")
    return f"import {tag} ← {ref}" if found and ref and tag and " " not in tag else one_line


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def format_cpu(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.2f}s" if seconds < 10 else format_duration(seconds)


def format_memory(kilobytes: int | None) -> str:
    """Peak RSS as getrusage reports it on Linux: kilobytes."""
    if kilobytes is None:
        return ""
    size = float(kilobytes)
    for unit in ("K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if size >= 10 or unit == "K" else f"{size:.1f}{unit}"
        size /= 1024
    raise AssertionError("unreachable")


def fitting_columns(width: int) -> tuple[str, ...]:
    """The columns shown in a pane `width` cells wide: all of them when the command still gets COMMAND_MIN
    cells, else fewer, in DROP_ORDER (status and command always)."""
    fixed = {key: w for key, _label, w in COLUMNS if w is not None}
    shown = [key for key, _label, _width in COLUMNS]
    for key in DROP_ORDER:
        used = sum(fixed[k] + CELL_PADDING for k in shown if k in fixed) + COMMAND_MIN + CELL_PADDING
        if width <= 0 or used <= width:
            break
        shown.remove(key)
    return tuple(shown)


class OperationsTable(DataTable[Text | str]):
    BINDINGS = [
        Binding("j,down", "cursor_down", "Down", show=False, id="ops.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="ops.up"),
        Binding("g,home", "scroll_top", "Top", show=False, id="ops.top"),
        Binding("G,end", "scroll_bottom", "Bottom", show=False, id="ops.bottom"),
    ]

    COMPONENT_CLASSES = {"operations-table--ok", "operations-table--failed", "operations-table--running"}

    def __init__(self, *, clock: Clock = utc_now, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.clock = clock
        self.operations: dict[str, Operation] = {}
        self._shown: dict[str, dict[str, Text | str]] = {}  # the cells as last set, by row
        self.shown_columns: tuple[str, ...] = tuple(key for key, _label, _width in COLUMNS)

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for key, label, width in COLUMNS:
            if key in self.shown_columns:
                self.add_column(label, key=key, width=width)

    def on_resize(self) -> None:
        wanted = fitting_columns(self.size.width)
        if wanted == self.shown_columns:
            return
        # Rare (a terminal resize): the columns are laid out afresh and every row added again, cursor kept.
        selected = self.selected_uuid
        self.shown_columns = wanted
        self.clear(columns=True)
        self._shown.clear()
        self._add_columns()
        for op in self.operations.values():
            cells = self._cells(op)
            self.add_row(*(cells[k] for k in wanted), key=op.uuid)
            self._shown[op.uuid] = cells
        if selected is not None:
            self.select(selected)

    def upsert(self, op: Operation) -> None:
        """Add the operation's row, or bring its cells up to date."""
        self.operations[op.uuid] = op
        cells = self._cells(op)
        if op.uuid not in self.rows:
            self.add_row(*(cells[k] for k in self.shown_columns), key=op.uuid)
            self._shown[op.uuid] = cells
            return
        for column, value in cells.items():
            self._set(op.uuid, column, value)

    def _set(self, uuid: str, column: str, value: Text | str) -> None:
        """Only a cell that changed: any update makes DataTable draw every visible cell again (~0.5 ms each)."""
        shown = self._shown.setdefault(uuid, {})
        if shown.get(column) != value:
            shown[column] = value
            if column in self.shown_columns:
                self.update_cell(uuid, column, value)

    def tick(self) -> None:
        """Running rows show their elapsed time; call this once a second."""
        for op in self.operations.values():
            if op.running and op.uuid in self.rows:
                self._set(op.uuid, "duration", self._duration(op))

    def _duration(self, op: Operation) -> str:
        if op.duration is None and op.running and op.created_at is not None:
            return format_duration(max(0.0, (self.clock() - op.created_at).total_seconds()))
        return format_duration(op.duration)

    def _cells(self, op: Operation) -> dict[str, Text | str]:
        if op.is_import:
            return self._import_cells(op)
        icon, kind = op_icon(op)
        # A run whose command failed still succeeded as an operation (and made a snapshot): its exit says so.
        status = Text(f"{icon} {outcome_words(op)}", style=self.get_component_rich_style(
            f"operations-table--{kind}", partial=True))
        command = " ".join(op.command.split())
        if len(command) > COMMAND_WIDTH:
            command = command[: COMMAND_WIDTH - 1] + "…"
        source = (op.image or "")[:8]
        result = "disposable" if op.disposable else (op.result or "")[:8]
        images = Text(f"{source} → {result}" if result else source)
        if op.result and op.result == op.image:
            images = Text(f"{source} (no change)")
        exit_code = "" if op.exit_code is None else str(op.exit_code)
        failed = op.exit_code not in (None, 0)
        exit_cell = Text(exit_code, style=self.get_component_rich_style("operations-table--failed", partial=True)
                         if failed else "")
        cpu = PENDING if op.running else format_cpu(op.cpu_seconds)
        memory = PENDING if op.running else format_memory(op.memory_kb)
        return {"status": status, "images": images, "exit": exit_cell, "duration": self._duration(op),
                "cpu": cpu, "memory": memory, "command": command}

    def _import_cells(self, op: Operation) -> dict[str, Text | str]:
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
        if len(command) > COMMAND_WIDTH:
            command = command[: COMMAND_WIDTH - 1] + "…"
        return {"status": status, "images": Text(images), "exit": "", "duration": self._duration(op),
                "cpu": "", "memory": "", "command": command}

    def select(self, uuid: str) -> None:
        if uuid in self.rows:
            self.move_cursor(row=self.get_row_index(uuid))

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
