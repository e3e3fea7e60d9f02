"""`v`: the logs of parallel runs side by side, like a tmux layout: 2 panes side by side, 3 or 4 in a grid, up to 9
(3x3) when the terminal has room, else the newest that fit with a "+k more" note. Each pane is a whole log box
(search `/`, filter `&`, follow `f`, save `s`) following its own run live, its border in the colour that run
keeps for the session and its title its label and state; when the run ends, its outcome is the last line.

Which runs: those running when the view opens, those started while it is open (by anyone: the operations table
lists them), and the newest batch (runs started within BATCH_WINDOW of the newest one: a `:parallel`), so the
view also shows a batch that has just finished. The panes are reconciled every half second, not per event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from math import ceil, sqrt

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer, Label

from contree_tui.tui.model import Operation, OutputBuffer
from contree_tui.tui.op_batch import BATCH_WINDOW
from contree_tui.tui.op_labels import LABEL_WIDTH
from contree_tui.tui.outcome import outcome
from contree_tui.tui.widgets.log_box import LogBox
from contree_tui.tui.widgets.log_host import LogHost, colour_slots, labels_of, log_of
from contree_tui.tui.widgets.operations_table import format_duration

MIN_PANE_WIDTH = 50  # cells: a pane narrower than this cuts most command output (80 columns: one pane across)
MIN_PANE_HEIGHT = 8  # rows: the border and 6 lines of log (80x24: two panes stacked)
MAX_COLUMNS = 3
MAX_PANES = 9  # 3x3: past that a pane shows too little to watch, and 8 colours are already all taken
TITLE_STATE = 30  # cells of a pane's title kept for the run's state (` · ✗ exit 3 · 6.10s`) and corners
RECONCILE_INTERVAL = 0.5  # s: new runs get a pane, titles show state changes


def split_layout(count: int, width: int, height: int) -> tuple[int, int, int]:
    """(columns, rows, panes shown) for `count` runs in `width` x `height` cells: as square as the panes allow,
    2 side by side, 3 or 4 in a 2x2 grid, 5 to 9 in 3 columns; the newest that fit when there is no room for all."""
    if count <= 0:
        return 1, 1, 0
    max_columns = max(1, min(MAX_COLUMNS, width // MIN_PANE_WIDTH))
    max_rows = max(1, height // MIN_PANE_HEIGHT)
    shown = min(count, MAX_PANES, max_columns * max_rows)
    columns = min(max_columns, ceil(sqrt(shown)))
    while ceil(shown / columns) > max_rows and columns < max_columns:
        columns += 1
    rows = min(max_rows, ceil(shown / columns))
    return columns, rows, min(shown, columns * rows)


def watched_to_show(watched: list[str], fit: int, running: Callable[[str], bool]) -> list[str]:
    """The `fit` runs that get a pane, in `watched`'s order (oldest first): the newest running ones first, then
    the newest that ended (at 80x24 two panes: the two still printing, not one that ended and one going)."""
    if fit >= len(watched):
        return list(watched)
    still_going = [uuid for uuid in watched if running(uuid)]
    keep = set(still_going[len(still_going) - fit:]) if fit else set()
    for uuid in reversed(watched):
        if len(keep) >= fit:
            break
        keep.add(uuid)
    return [uuid for uuid in watched if uuid in keep]


def _started(op: Operation) -> float:
    return op.created_at.timestamp() if isinstance(op.created_at, datetime) else 0.0


class LogPane(LogBox):
    """One run's log in the split view; its border title says which run (label, colour) and how it stands."""

    def __init__(self, uuid: str, buffer: OutputBuffer) -> None:
        super().__init__(id=f"pane-{uuid}", classes="log-pane")
        self.uuid = uuid
        self.buffer = buffer

    def on_mount(self) -> None:
        self.view.offers_merged = False
        self.view.show(self.buffer)

    def save_key(self) -> str | None:
        return self.uuid

    def describe(self, op: Operation, label: str, colour: int) -> None:
        title = f"{label} · {outcome(op)}"
        if op.duration is not None and not op.running:
            title += f" · {format_duration(op.duration)}"
        if self.border_title != title:
            self.border_title = title
        self.set_class(True, f"-op-{colour}")


class SplitLogsScreen(Screen[None]):
    CSS_PATH = "../styles/split_logs.tcss"
    BINDINGS = [
        Binding("v,escape", "close", "Back", id="split.close"),
        Binding("tab,l", "focus_pane(1)", "Next pane", id="split.next"),
        Binding("shift+tab,h", "focus_pane(-1)", "Previous pane", show=False, id="split.previous"),
    ]

    def __init__(self, host: LogHost) -> None:
        super().__init__()
        self.host = host
        self.watched: list[str] = []  # run uuids, oldest first: every run this view has shown or will show
        self.hidden = 0  # watched runs without a pane (no room): the "+k more"
        self._reconciling = asyncio.Lock()

    def compose(self) -> ComposeResult:
        yield Label("", id="split-note")
        yield Grid(id="split-panes")
        yield Footer()

    async def on_mount(self) -> None:
        self.watched = self._opening_runs()
        await self.reconcile()
        panes = self.panes
        if panes:
            panes[-1].view.focus()  # the newest run
        self.set_interval(RECONCILE_INTERVAL, self.reconcile)

    @property
    def panes(self) -> list[LogPane]:
        return list(self.query_one("#split-panes", Grid).query_children(LogPane))

    def _opening_runs(self) -> list[str]:
        ops = sorted(self.host.table.operations.values(), key=_started)
        if not ops:
            return []
        newest = _started(ops[-1])
        batch = [op.uuid for op in ops
                 if op.running or (op.created_at is not None and newest - _started(op) <= BATCH_WINDOW)]
        return batch or [ops[-1].uuid]  # runs listed without a start time: the newest alone, not all of them

    async def reconcile(self) -> None:
        """Runs started since get a pane (the oldest give theirs up when there is no room); titles catch up."""
        async with self._reconciling:  # the timer's and a resize's: one at a time, or a pane is mounted twice
            await self._reconcile()

    async def _reconcile(self) -> None:
        known = self.host.table.operations
        for op in sorted(known.values(), key=_started):
            if op.running and op.uuid not in self.watched:
                self.watched.append(op.uuid)
        watched = [uuid for uuid in self.watched if uuid in known]
        grid = self.query_one("#split-panes", Grid)
        columns, rows, fit = split_layout(len(watched), grid.size.width or self.size.width,
                                          grid.size.height or max(1, self.size.height - 2))
        shown = watched_to_show(watched, fit, lambda uuid: known[uuid].running)
        self.hidden = len(watched) - len(shown)
        current = {pane.uuid: pane for pane in self.panes}
        gone = [pane for uuid, pane in current.items() if uuid not in shown]
        if gone:
            await grid.remove_children(gone)
        fresh = [LogPane(uuid, log_of(self.host, known[uuid])) for uuid in shown if uuid not in current]
        if fresh:
            await grid.mount(*fresh)
        panes = {pane.uuid: pane for pane in [*current.values(), *fresh] if pane.uuid in shown}
        for position, uuid in enumerate(shown):  # oldest first (an older run comes back when the terminal grows)
            if grid.children[position] is not panes[uuid]:
                grid.move_child(panes[uuid], before=position)
        grid.styles.grid_size_columns = columns
        grid.styles.grid_size_rows = rows
        # a pane's title has room for more than the merged log's prefix: its width less the state and corners
        pane_width = (grid.size.width or self.size.width) // max(1, columns)
        labels = labels_of(self.host, watched, width=max(LABEL_WIDTH, pane_width - TITLE_STATE))
        slots = colour_slots(self.host)
        for position, uuid in enumerate(shown):
            pane = panes[uuid]
            pane.describe(known[uuid], labels[uuid], slots.slot(uuid))
            last = position == len(shown) - 1
            pane.styles.column_span = columns - (len(shown) - 1) % columns if last else 1  # the last fills its row
        self._note(len(watched), len(shown), columns)

    def _note(self, watched: int, shown: int, columns: int) -> None:
        if not watched:
            text = "no runs to watch yet: :parallel CMD ;; CMD starts some · v: back"
        else:
            running = sum(1 for uuid in self.watched if (op := self.host.table.operations.get(uuid)) and op.running)
            text = f"{watched} run{'s' if watched != 1 else ''}, {running} running"
            if self.hidden:  # the oldest give way; at 80x24 this line has 80 cells for all of it
                more = "no room" if shown < MAX_PANES else f"{MAX_PANES} at most"
                text += f" · +{self.hidden} older ({more})"
            text += " · tab/h/l: pane · v: back"
        self.query_one("#split-note", Label).update(text)

    def on_resize(self, event: Resize) -> None:
        self.call_after_refresh(self.reconcile)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_focus_pane(self, step: int) -> None:
        panes = self.panes
        if not panes:
            return
        focused = next((i for i, pane in enumerate(panes) if self.focused is not None
                        and (self.focused is pane or pane in self.focused.ancestors)), None)
        at = 0 if focused is None else (focused + step) % len(panes)
        panes[at].view.focus()
