"""The main screen's log pane: the selected operation's log under its title, or (`m`) the merged log of the
running operations, each line behind its operation's label (op_labels.py: what a person calls it) in the
colour that operation keeps for the session. With nothing running, `m` merges the last batch the operations
table shows (op_batch.py: a `:parallel` that has just finished), and the title says so; with no run at all,
a toast says so and the empty merged log waits for runs to join it."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.widgets import Label

from contree_tui.tui.model import OutputBuffer
from contree_tui.tui.op_batch import newest_batch, started
from contree_tui.tui.widgets.log_box import LogBox
from contree_tui.tui.widgets.log_host import LogHost, colour_slots, labels_of, log_of
from contree_tui.tui.widgets.log_merge import MergedLog

JOIN_INTERVAL = 0.5  # s: how soon a run started elsewhere joins the merged log


class LogPanel(LogBox):
    """The log view with its title (which operation), the "+N new lines" badge and the prompt."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._selected: tuple[str, OutputBuffer | None, str | None] = ("no operation selected", None, None)
        self.merged: MergedLog | None = None
        self._merged_batch = 0  # runs of a finished batch the merged log opened on (0: it opened on running ones)
        self._merged_since = 0.0  # when the merged log opened (epoch s): every run started since joins it
        self.host: LogHost | None = None  # the screen's: the operations, their buffers, the session's colours

    def compose(self) -> ComposeResult:
        yield Label("no operation selected", id="log-title")
        yield from super().compose()

    def on_mount(self) -> None:
        self.set_interval(JOIN_INTERVAL, self._join_running)

    def show(self, title: str, buffer: OutputBuffer | None, key: str | None = None) -> None:
        """Show this operation's log (`key`: its uuid, for the file name a save offers); while the merged log
        is up, it is remembered for when `m` goes back."""
        self._selected = (title, buffer, key)
        if self.merged is None:
            self.query_one("#log-title", Label).update(title)
            self.view.show(buffer)

    def save_key(self) -> str | None:
        return None if self.merged is not None else self._selected[2]

    # Merged log -----------------------------------------------------------------------------------------

    def toggle_merged(self) -> None:
        if self.merged is not None:
            self.merged = None
            title, buffer, _key = self._selected
            self.query_one("#log-title", Label).update(title)
            self.view.show(buffer)
            return
        self.merged = MergedLog()
        self._merged_batch = 0
        self._merged_since = time.time()
        self._join_running()
        if not self.merged.members:
            self._join_last_batch()
        self.merged.pull()
        self.view.show(self.merged)
        self._merged_title()

    def _join_running(self) -> None:
        """Operations started since the merged log opened join it (the finished ones stay, with their end)."""
        merged, host = self.merged, self.host
        if merged is None or host is None:
            return
        slots = colour_slots(host)
        joined = False
        for key, buffer in host.running_logs():
            joined = merged.attach(key, buffer, colour=slots.slot(key)) or joined
        # A run that began and ended between two ticks (`echo hi`: ~10 ms, the tick is 0.5 s) joins too: its
        # lines were the ones the person just asked for.
        present = set(merged.keys)
        for op in list(host.table.operations.values()):
            if not op.running and started(op) >= self._merged_since and op.uuid not in present:
                joined = merged.attach(op.uuid, log_of(host, op), colour=slots.slot(op.uuid)) or joined
        if joined:
            # What tells the runs apart depends on who is there: `…echo alpha…` only once beta has joined.
            merged.relabel(labels_of(host, merged.keys))
            self._merged_title()

    def _join_last_batch(self) -> None:
        """Nothing runs: the newest batch among the runs the table shows (its filter applies), or a toast when
        there is none (`m` after a `:parallel` ended showed an empty pane: it merged running runs only)."""
        merged, host = self.merged, self.host
        if merged is None or host is None:
            return
        table = host.table
        batch = newest_batch(op for uuid, op in table.operations.items() if uuid in table.rows)
        if not batch:
            hidden = f" (the filter /{table.filter_text} hides them)" if table.filter_text else ""
            self.notify(f"no runs to merge{hidden}: runs started now join the merged log", title="merged log",
                        severity="warning", markup=False)
            return
        slots = colour_slots(host)
        for op in batch:
            merged.attach(op.uuid, log_of(host, op), colour=slots.slot(op.uuid))
        merged.relabel(labels_of(host, merged.keys))
        self._merged_batch = len(batch)

    def _merged_title(self) -> None:
        if self.merged is not None:
            count = len(self.merged.members)
            runs = f"{count} run{'s' if count != 1 else ''}"
            # `m` after the runs ended showed an empty pane under "0 operations": say what fills it
            if count == 0:
                what = "nothing running: runs started now join it"
            elif self._merged_batch == count:
                what = f"the last batch, {runs}, ended"
            elif self._merged_batch:
                what = f"the last batch and runs since, {runs}"
            else:
                what = f"{count} operation{'s' if count != 1 else ''}"
            self.query_one("#log-title", Label).update(f"merged log · {what} · m: the selected one")
