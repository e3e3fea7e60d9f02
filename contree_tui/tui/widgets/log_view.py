"""The log: a Line-API view over an operation's OutputBuffer, or over the merged log of the running ones
(Toolong's approach). Lines live in the buffer, outside the widget; the view draws only the rows on screen, so
switching operations or a flood of output costs what the screen shows, not what the run printed.

New lines are taken in batches by a 50 ms timer (never one UI update per event). Follow sticks to the bottom;
scrolling up pauses it and a badge counts the lines that arrived since; `G`/`end`/`f` resume.

On top of the lines (log_rows.RowMap maps screen rows to lines): `/` searches (matches highlighted, `n`/`N`
move between them), `&` (or a search typed with a leading `&`, as in less) shows only the matching lines, esc
clears either; `t` draws each batch's time before its lines, `w` wraps long lines; `s` saves the log to a
file; `m` switches to the merged log of all running operations, each line behind its operation's coloured
prefix.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Literal

from rich.segment import Segment
from rich.style import Style
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Resize
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Label

from contree_tui.tui.model import OutputBuffer
from contree_tui.tui.screens.confirm import ConfirmScreen
from contree_tui.tui.widgets.log_export import LogSaveError, default_log_path, resolve_log_path, write_log
from contree_tui.tui.widgets.log_merge import MergedLog
from contree_tui.tui.widgets.log_prompt import LogPrompt
from contree_tui.tui.widgets.log_rows import LogSource, RowMap, Search

FLUSH_INTERVAL = 0.05  # s: 20 batches a second is smooth to the eye and a small fraction of a core
STAMP_WIDTH = len("15:07:26.123 ")
OPERATION_COLOURS = 6  # log-view--op-0 … op-5 in app.tcss
Wish = Literal["search", "filter", "save", "merged"]
RunningLogs = Callable[[], list[tuple[str, OutputBuffer]]]  # (operation uuid, its buffer) of the running ones


def format_stamp(ts: float | None) -> str:
    if ts is None:
        return " " * STAMP_WIDTH
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d} "


class LogView(ScrollView, can_focus=True):
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
        Binding("m", "wish('merged')", "Merged log of the running operations / the selected one", id="log.merged"),
    ]

    COMPONENT_CLASSES = {
        "log-view--stdout", "log-view--stderr", "log-view--meta", "log-view--stamp",
        "log-view--match", "log-view--current-match",
        *(f"log-view--op-{n}" for n in range(OPERATION_COLOURS)),
    }

    following: reactive[bool] = reactive(True, repaint=False)
    """Stick to the bottom as lines arrive."""
    new_lines: reactive[int] = reactive(0, repaint=False)
    """Lines that arrived while follow was paused."""

    class FollowState(Message):
        """Follow was paused or resumed, or more lines arrived while paused (superseded ones are dropped)."""

        def __init__(self, view: LogView, following: bool, new_lines: int) -> None:
            super().__init__()
            self.view = view
            self.following = following
            self.new_lines = new_lines

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, LogView.FollowState) and message.view is self.view

    class Wants(Message):
        """A key asked for something the panel does: a prompt, a save, the merged log."""

        def __init__(self, what: Wish) -> None:
            super().__init__()
            self.what = what

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source: LogSource | None = None
        self.rows = RowMap()
        self.search: Search | None = None
        self.filtering = False
        self.current_match: int | None = None  # absolute index of the line n/N last moved to
        self.timestamps = False
        self.wrap = False
        self._styles: dict[str, Style] | None = None

    @property
    def buffer(self) -> LogSource | None:
        """What the view shows (an operation's buffer, or the merged log)."""
        return self.source

    def on_mount(self) -> None:
        self.set_interval(FLUSH_INTERVAL, self.flush)

    def show(self, source: LogSource | None) -> None:
        """Switch to another operation's output (or the merged log), following it from the bottom."""
        self.source = source
        self.current_match = None
        self._remap()
        self.new_lines = 0
        self.following = True
        self._to_end()
        self.refresh()

    # Mapping rows to lines -------------------------------------------------------------------------------

    def _extra(self) -> int:
        """Cells drawn before each line's text."""
        extra = STAMP_WIDTH if self.timestamps else 0
        if isinstance(self.source, MergedLog):
            extra += self.source.label_width() + len(" │ ")
        return extra

    def _wrap_width(self) -> int | None:
        return max(1, self.scrollable_content_region.width) if self.wrap else None

    def _content_size(self) -> Size:
        source = self.source
        if source is None:
            return Size(0, 0)
        width = 0 if self.wrap else self._extra() + source.width
        return Size(width, self.rows.row_count)

    def _set_virtual_size(self, size: Size) -> None:
        """Like `self.virtual_size = size` without its full layout of the screen (a reactive with layout=True):
        the view's own size never depends on its content, and at 20 flushes a second that layout was most of
        the UI's time under a flood. The scrollbars are updated; showing or hiding one still lays out."""
        if size == self.virtual_size:
            return
        self.set_reactive(LogView.virtual_size, size)
        self._scroll_update(size)
        self.refresh()

    def _remap(self, *, keep_place: bool = False) -> None:
        """Map the source afresh (settings changed); keep the top line on screen unless following."""
        anchor = self.rows.locate(round(self.scroll_y)) if keep_place and not self.following else None
        self.rows.reset(self.source, search=self.search, filtering=self.filtering, wrap_width=self._wrap_width(),
                        extra=self._extra())
        self._set_virtual_size(self._content_size())
        if self.following:
            self._to_end()
        elif anchor is not None:
            self._scroll_to_row(self.rows.row_of(anchor[0]))
        self.refresh()

    def flush(self) -> None:
        """Take the lines that arrived since the last flush: one layout update per batch."""
        if self.following and not self.is_vertical_scroll_end and not self.is_vertical_scrollbar_grabbed:
            self._to_end()  # the layout moved the bottom (a horizontal scrollbar appeared, a resize)
        source = self.source
        if source is None:
            return
        if isinstance(source, MergedLog):
            extra = self._extra()
            source.pull()
            if self._extra() != extra:  # an operation with a longer label joined
                self._remap(keep_place=True)
                return
        if self.wrap and self.rows.wrap_width != self._wrap_width():
            self._remap(keep_place=True)
            return
        arrived, gone = self.rows.update()
        size = self._content_size()
        if not arrived and not gone and size == self.virtual_size:
            return
        self._set_virtual_size(size)
        if self.current_match is not None and self.current_match < source.dropped:
            self.current_match = None
        if self.following:
            self._to_end()
        else:
            if gone:  # the oldest lines went: keep the lines on screen where they are
                self._scroll_to_row(max(0, round(self.scroll_y) - gone))
            self.new_lines += arrived
        self.refresh()

    def on_resize(self, event: Resize) -> None:
        if self.wrap and self.source is not None:
            self.call_after_refresh(self.flush)

    def _to_end(self) -> None:
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)

    def _scroll_to_row(self, row: int) -> None:
        self.scroll_to(y=row, animate=False, immediate=True, force=True)

    @property
    def line_count(self) -> int:
        """Lines shown (the filter hides the others)."""
        return self.rows.line_count

    # Follow ---------------------------------------------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        at_end = round(new_value) >= self.max_scroll_y
        if at_end and not self.following:
            self.following = True
        elif not at_end and new_value < old_value and self.following:
            self.following = False  # the user went up: stop dragging them back down

    def watch_following(self, following: bool) -> None:
        if following:
            self.new_lines = 0
        self.post_message(self.FollowState(self, following, self.new_lines))

    def watch_new_lines(self, count: int) -> None:
        self.post_message(self.FollowState(self, self.following, count))

    def action_follow(self) -> None:
        self.following = True
        self._to_end()

    def action_top(self) -> None:
        self.scroll_to(y=0, animate=False, immediate=True, force=True)

    def action_scroll_up_line(self) -> None:
        self.scroll_to(y=self.scroll_y - 1, animate=False, immediate=True, force=True)

    def action_scroll_down_line(self) -> None:
        self.scroll_to(y=self.scroll_y + 1, animate=False, immediate=True, force=True)

    def action_page_up(self) -> None:
        self.scroll_to(y=self.scroll_y - max(1, self.scrollable_content_region.height - 1), animate=False, force=True,
                       immediate=True)

    def action_page_down(self) -> None:
        self.scroll_to(y=self.scroll_y + max(1, self.scrollable_content_region.height - 1), animate=False, force=True,
                       immediate=True)

    # Search, filter, timestamps, wrap -------------------------------------------------------------------

    def action_wish(self, what: Wish) -> None:
        self.post_message(self.Wants(what))

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

    # Drawing --------------------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None

    def _style(self, name: str) -> Style:
        if self._styles is None:
            base = self.rich_style
            self._styles = {component.removeprefix("log-view--"):
                            base + self.get_component_rich_style(component, partial=True)
                            for component in self.COMPONENT_CLASSES}
        return self._styles[name]

    def line_strip(self, index: int) -> Strip:
        """Line `index` (absolute) as drawn, whole: timestamp, operation prefix, text with matches marked."""
        source = self.source
        assert source is not None
        stream, text = source.lines[index - source.dropped]
        segments: list[Segment] = []
        if self.timestamps:
            segments.append(Segment(format_stamp(source.time_of(index)), self._style("stamp")))
        if isinstance(source, MergedLog):
            slot = source.origin(index)
            label = source.members[slot].label
            segments.append(Segment(f"{label:<{source.label_width()}} │ ",
                                    self._style(f"op-{slot % OPERATION_COLOURS}")))
        style = self._style(stream.value)
        spans = self.search.spans(text) if self.search is not None else []
        if not spans:
            segments.append(Segment(text, style))
        else:
            mark = self._style("current-match" if index == self.current_match else "match")
            done = 0
            for start, end in spans:
                if start > done:
                    segments.append(Segment(text[done:start], style))
                segments.append(Segment(text[start:end], style + mark))
                done = end
            if done < len(text):
                segments.append(Segment(text[done:], style))
        return Strip(segments)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        place = self.rows.locate(scroll_y + y) if self.source is not None else None
        if place is None:
            return Strip.blank(width, base)
        index, part = place
        strip = self.line_strip(index)
        if self.rows.wrap_width is not None:
            wrap = self.rows.wrap_width
            return strip.crop(part * wrap, (part + 1) * wrap).extend_cell_length(width, base)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def text_lines(self) -> list[str]:
        """The plain text of every buffered line, the filter notwithstanding (tests and save-to-file)."""
        if isinstance(self.source, MergedLog):
            return self.source.text_lines()
        return list(self.source.lines.texts) if self.source else []

    def shown_lines(self) -> list[str]:
        """The text of the lines the view shows (after the filter), undecorated."""
        source = self.source
        if source is None:
            return []
        texts, offset = source.lines.texts, source.dropped
        return [texts[index - offset] for index in self.rows.shown_lines()]

    def screen_text(self) -> list[str]:
        """The rows on screen as drawn (tests)."""
        return [self.render_line(y).text for y in range(self.scrollable_content_region.height)]


class LogPanel(Vertical):
    """The log view with its title (which operation), the "+N new lines" badge and the prompt."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._selected: tuple[str, OutputBuffer | None, str | None] = ("no operation selected", None, None)
        self.merged: MergedLog | None = None
        self.running_logs: RunningLogs | None = None  # the screen's: the running operations' buffers

    def compose(self) -> ComposeResult:
        yield Label("no operation selected", id="log-title")
        yield LogView(id="log")
        yield LogPrompt(id="log-prompt")
        yield Label("", id="log-badge")

    def on_mount(self) -> None:
        self.set_interval(0.5, self._join_running)

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    @property
    def prompt(self) -> LogPrompt:
        return self.query_one(LogPrompt)

    def show(self, title: str, buffer: OutputBuffer | None, key: str | None = None) -> None:
        """Show this operation's log (`key`: its uuid, for the file name a save offers); while the merged log
        is up, it is remembered for when `m` goes back."""
        self._selected = (title, buffer, key)
        if self.merged is None:
            self.query_one("#log-title", Label).update(title)
            self.view.show(buffer)

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
        if self.merged is None or self.running_logs is None:
            return
        joined = False
        for key, buffer in self.running_logs():
            joined = self.merged.attach(key, buffer) or joined
        if joined:
            self._merged_title()

    def _merged_title(self) -> None:
        if self.merged is not None:
            count = len(self.merged.members)
            self.query_one("#log-title", Label).update(
                f"merged log · {count} operation{'s' if count != 1 else ''} · m: the selected one")

    # Prompt, search, save -------------------------------------------------------------------------------

    @on(LogView.Wants)
    def _wants(self, message: LogView.Wants) -> None:
        message.stop()
        if message.what == "merged":
            self.toggle_merged()
        elif message.what == "save":
            if self.view.source is None:
                self.notify("no log to save: select an operation", title="save", severity="warning")
                return
            key = None if self.merged is not None else self._selected[2]
            self.prompt.ask("save", str(default_log_path(key)))
        else:
            view = self.view
            current = view.search.text if view.search is not None else ""
            prefix = "&" if message.what == "filter" or (view.filtering and message.what == "search") else ""
            self.prompt.ask("search", prefix + current)

    @on(LogPrompt.Answered)
    def _answered(self, message: LogPrompt.Answered) -> None:
        message.stop()
        self.view.focus()
        if message.mode == "save":
            self.save(message.value)
            return
        text = message.value
        filtering = text.startswith("&")
        text = text[1:] if filtering else text
        found = self.view.set_search(text, filtering=filtering)
        if text and not found:
            self.notify(f"{text!r} is not in this log" + (" (new lines still count)" if filtering else ""),
                        title="filter" if filtering else "search", severity="warning")

    @on(LogPrompt.Closed)
    def _closed(self, message: LogPrompt.Closed) -> None:
        message.stop()
        self.view.focus()

    @work(exclusive=True, group="log-save", exit_on_error=False, description="saving the log")
    async def save(self, typed: str) -> None:
        """Write the log shown (every buffered line, the filter notwithstanding) to the path typed; a file that
        exists is replaced only after a yes."""
        try:
            path = resolve_log_path(typed)
        except LogSaveError as exc:
            self.notify(str(exc), title="log not saved", severity="error")
            return
        if path.is_file() and not await self.app.push_screen_wait(ConfirmScreen(f"Replace {path.name}?", str(path))):
            return
        view = self.view
        lines = view.text_lines()  # taken now, on the UI thread: the buffer keeps changing
        dropped = view.source.dropped if view.source is not None else 0
        try:
            count = await asyncio.to_thread(write_log, path, lines)
        except LogSaveError as exc:
            self.notify(str(exc), title="log not saved", severity="error")
            return
        note = f" (the oldest {dropped} were no longer buffered)" if dropped else ""
        self.notify(f"{count} line{'s' if count != 1 else ''} → {path}{note}", title="log saved")

    def on_log_view_follow_state(self, message: LogView.FollowState) -> None:
        badge = self.query_one("#log-badge", Label)
        paused = not message.following
        badge.set_class(paused, "-visible")
        if paused:
            count = message.new_lines
            news = f"+{count} new line{'s' if count != 1 else ''}" if count else "paused"
            text = f"{news} · G follows"
            # a layout only when its width changes: one per flush (20 a second) was most of a frame's time
            badge.update(text, layout=len(text) != len(str(badge.content)))

