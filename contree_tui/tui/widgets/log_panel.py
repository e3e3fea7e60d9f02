"""The main screen's log pane: the selected operation's log under its title, or (`m`) the merged log of the
running operations, each line behind its operation's label (op_labels.py: what a person calls it) in the
colour that operation keeps for the session."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Label

from contree_tui.tui.model import OutputBuffer
from contree_tui.tui.widgets.log_box import LogBox
from contree_tui.tui.widgets.log_host import LogHost, colour_slots, labels_of
from contree_tui.tui.widgets.log_merge import MergedLog

JOIN_INTERVAL = 0.5  # s: how soon a run started elsewhere joins the merged log


class LogPanel(LogBox):
    """The log view with its title (which operation), the "+N new lines" badge and the prompt."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._selected: tuple[str, OutputBuffer | None, str | None] = ("no operation selected", None, None)
        self.merged: MergedLog | None = None
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
        self._join_running()
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
        if joined:
            # What tells the runs apart depends on who is there: `…echo alpha…` only once beta has joined.
            merged.relabel(labels_of(host, merged.keys))
            self._merged_title()

    def _merged_title(self) -> None:
        if self.merged is not None:
            count = len(self.merged.members)
            # `m` after the runs ended showed an empty pane under "0 operations": say what will fill it
            what = ("nothing running: runs started now join it" if count == 0
                    else f"{count} operation{'s' if count != 1 else ''}")
            self.query_one("#log-title", Label).update(f"merged log · {what} · m: the selected one")
