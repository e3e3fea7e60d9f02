"""The log view's search keys: `/` highlights a text (`n`/`N` move between the matches, wrapping round as less
does), `&` shows only the lines with it, esc clears either; `t` draws each batch's time before its lines, `w`
wraps long lines. The rows they show are log_rows.RowMap's; this only moves and remaps."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from contree_tui.tui.widgets.log_rows import Search
from contree_tui.tui.widgets.log_scroll import ScrollingLog


class SearchingLog(ScrollingLog):
    def set_search(self, text: str, *, filtering: bool = False) -> int:
        """Search for `text` (empty: no search), showing only the matching lines if `filtering`; the first
        match at or after the top of the screen becomes current. How many lines match."""
        self.search = Search(text) if text else None
        self.filtering = filtering and self.search is not None
        self.current_match = None
        top = self.rows.locate(round(self.scroll_y))
        self._remap(keep_place=True)
        if self.search is None or not self.rows.matches:
            return 0
        if not self.filtering:
            self._move_to_match(forward=True, start=top[0] - 1 if top else None)
        return len(self.rows.matches)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_search":
            return self.search is not None  # nothing to clear: esc goes on to the screen (focus the tree)
        return True

    def action_clear_search(self) -> None:
        self.set_search("")

    def action_next_match(self) -> None:
        self._step_match(forward=True)

    def action_previous_match(self) -> None:
        self._step_match(forward=False)

    def _step_match(self, *, forward: bool) -> None:
        if self.search is None:
            self.notify("no search: / starts one", title="log", severity="warning")
        elif not self.rows.matches:
            self.notify(f"{self.search.text!r} is not in this log", title="log", severity="warning")
        else:
            self._move_to_match(forward=forward)

    def _move_to_match(self, *, forward: bool, start: int | None = None) -> None:
        """To the next (or previous) matching line after `start` (default: the current match, else the top
        of the screen), wrapping around at the ends, as less does."""
        matches = self.rows.matches
        if start is None:
            start = self.current_match
        if start is None:
            top = self.rows.locate(round(self.scroll_y))
            start = top[0] - 1 if top else -1
        if forward:
            at = bisect_right(matches, start)
            line = matches[at] if at < len(matches) else matches[0]
        else:
            at = bisect_left(matches, start) - 1
            line = matches[at] if at >= 0 else matches[-1]
        self.current_match = line
        row = self.rows.row_of(line)
        height = self.scrollable_content_region.height
        if not (self.scroll_y <= row < self.scroll_y + height):  # off screen: bring it to the upper third
            target = max(0, row - height // 3)
            if target < self.max_scroll_y:
                self.following = False
            self._scroll_to_row(target)
        self.refresh()

    def action_toggle_timestamps(self) -> None:
        self.timestamps = not self.timestamps
        self._remap(keep_place=True)

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self.scroll_to(x=0, animate=False, immediate=True, force=True)
        self._remap(keep_place=True)

