"""The log: LogView, a view over an operation's output or the merged log of the running ones, and LogPanel,
the pane around it on the main screen. The view is built in layers, each in its own module:

- log_scroll.py: the scrolling core (rows → lines, the 50 ms flush, follow and its badge, drawing);
- log_search.py: `/` search with `n`/`N`, `&` filter, `t` timestamps, `w` wrap;
- here: the keys, and the wishes (a prompt, a save, the merged log) the pane around it answers;
- log_box.py: that pane (the prompt, the badge, saving), and log_panel.py: the main screen's, with `m`, the
  merged log of all running operations, each line behind its operation's label and colour (op_labels.py).
"""

from __future__ import annotations

from typing import Literal

from textual.binding import Binding
from textual.message import Message

from contree_tui.tui.op_labels import COLOUR_SLOTS
from contree_tui.tui.widgets.log_scroll import FLUSH_INTERVAL, STAMP_WIDTH, format_stamp
from contree_tui.tui.widgets.log_search import SearchingLog

__all__ = ["FLUSH_INTERVAL", "OPERATION_COLOURS", "STAMP_WIDTH", "LogView", "Wish", "format_stamp"]

OPERATION_COLOURS = COLOUR_SLOTS  # log-view--op-0 … op-7 in app.tcss
Wish = Literal["search", "filter", "save", "merged"]


class LogView(SearchingLog):
    BINDINGS = [
        Binding("j,down", "scroll_down_line", "Down", show=False, id="log.down"),
        Binding("k,up", "scroll_up_line", "Up", show=False, id="log.up"),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False, id="log.page-up"),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False, id="log.page-down"),
        Binding("g,home", "top", "Top", show=False, id="log.top"),
        Binding("G,end,f", "follow", "Follow", id="log.follow"),
        Binding("slash", "wish('search')", "Search (n/N: next/previous match)", id="log.search"),
        Binding("ampersand", "wish('filter')", "Show only the lines with a text", show=False, id="log.filter"),
        Binding("n", "next_match", "Next match", show=False, id="log.next-match"),
        Binding("N", "previous_match", "Previous match", show=False, id="log.previous-match"),
        Binding("escape", "clear_search", "Clear the search or filter", show=False, id="log.clear-search"),
        Binding("t", "toggle_timestamps", "Timestamps", id="log.timestamps"),
        Binding("w", "toggle_wrap", "Wrap", id="log.wrap"),
        Binding("s", "wish('save')", "Save to a file", id="log.save"),
        Binding("m", "wish('merged')", "Merged log of the running runs (none: the last batch) / the selected one",
                id="log.merged"),
    ]


    COMPONENT_CLASSES = {
        "log-view--stdout", "log-view--stderr", "log-view--meta", "log-view--stamp",
        "log-view--match", "log-view--current-match", "log-view--badge",
        *(f"log-view--op-{n}" for n in range(OPERATION_COLOURS)),
    }

    class Wants(Message):
        """A key asked for something the panel does: a prompt, a save, the merged log."""

        def __init__(self, what: Wish) -> None:
            super().__init__()
            self.what = what

    offers_merged = True
    """`m` (the merged log) is the main screen's; a split-view pane turns it off (and off the footer)."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "wish" and parameters == ("merged",) and not self.offers_merged:
            return False
        return super().check_action(action, parameters)

    def action_wish(self, what: Wish) -> None:
        self.post_message(self.Wants(what))
