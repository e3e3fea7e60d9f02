"""The log view's scrolling core: a Line-API view (Toolong's approach) over a LogSource (an operation's
OutputBuffer, or the merged log). Lines live in the source, outside the widget; only the rows on screen are
drawn, so switching operations or a flood of output costs what the screen shows, not what the run printed.

New lines are taken in batches by a 50 ms timer (never one UI update per event). Follow sticks to the bottom;
scrolling up pauses it, and the view draws the "+N new lines" badge over its last row (log_badge.py).
"""

from __future__ import annotations

import time

from rich.segment import Segment
from rich.style import Style
from textual.events import Resize
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from contree_tui.tui.op_labels import COLOUR_SLOTS
from contree_tui.tui.widgets.log_badge import badge_text, with_badge
from contree_tui.tui.widgets.log_merge import MergedLog
from contree_tui.tui.widgets.log_rows import LogSource, RowMap, Search

FLUSH_INTERVAL = 0.05  # s: 20 batches a second is smooth to the eye and a small fraction of a core
STAMP_WIDTH = len("15:07:26.123 ")


def format_stamp(ts: float | None) -> str:
    if ts is None:
        return " " * STAMP_WIDTH
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d} "


class ScrollingLog(ScrollView, can_focus=True):
    """Rows → lines (log_rows.RowMap), the flush, follow, scrolling and drawing; the keys are log_view's."""

    following: reactive[bool] = reactive(True, repaint=False)
    """Stick to the bottom as lines arrive."""
    new_lines: reactive[int] = reactive(0, repaint=False)
    """Lines that arrived while follow was paused."""

    class FollowState(Message, namespace="log_view"):
        """Follow was paused or resumed, or more lines arrived while paused (superseded ones are dropped)."""

        def __init__(self, view: ScrollingLog, following: bool, new_lines: int) -> None:
            super().__init__()
            self.view = view
            self.following = following
            self.new_lines = new_lines

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ScrollingLog.FollowState) and message.view is self.view

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
        self.set_reactive(ScrollingLog.virtual_size, size)
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
            source.pull()
            if self._extra() != self.rows.extra:  # an operation joined: the labels' width changed
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
        self._refresh_badge_row()
        self.post_message(self.FollowState(self, following, self.new_lines))

    def watch_new_lines(self, count: int) -> None:
        self._refresh_badge_row()
        self.post_message(self.FollowState(self, self.following, count))

    def _refresh_badge_row(self) -> None:
        """Repaint the row the badge is drawn over (log_badge.py): one row, never a layout."""
        self.refresh(Region(0, self.scrollable_content_region.height - 1, self.size.width, 1))

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

    # Drawing --------------------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None

    def _style(self, name: str) -> Style:
        """A component's style over the view's own ("base"), worked out once per style change: `rich_style`
        walks the ancestors' backgrounds on every call (0.1-0.4 ms), and it was asked for each row drawn, 20
        frames a second while runs stream (about a tenth of a frame's time in bench/bench_tui_logs.py)."""
        if self._styles is None:
            base = self.rich_style
            self._styles = {component.removeprefix("log-view--"):
                            base + self.get_component_rich_style(component, partial=True)
                            for component in self.COMPONENT_CLASSES}
            self._styles["base"] = base
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
            member = source.members[source.origin(index)]
            segments.append(Segment(f"{member.label:<{source.label_width()}} │ ",
                                    self._style(f"op-{member.colour % COLOUR_SLOTS}")))
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
        row = self._render_row(y)
        text = badge_text(self.following, self.new_lines)
        if text is not None and y == self.scrollable_content_region.height - 1:
            return with_badge(row, text, self._style("badge"), self.size.width)
        return row

    def _render_row(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self._style("base")
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


