"""The log of one operation: a Line-API view over the operation's OutputBuffer (Toolong's approach). Lines
live in the buffer, outside the widget; the view draws only the rows on screen, so switching operations or a
flood of output costs what the screen shows, not what the run printed.

New lines are taken in batches by a 50 ms timer (never one UI update per event). Follow sticks to the bottom;
scrolling up pauses it and a badge counts the lines that arrived since; `G`/`end`/`f` resume.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Label

from contree_tui.tui.model import OutputBuffer, Stream

FLUSH_INTERVAL = 0.05  # s: 20 batches a second is smooth to the eye and a small fraction of a core


class LogView(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("j,down", "scroll_down_line", "Down", show=False, id="log.down"),
        Binding("k,up", "scroll_up_line", "Up", show=False, id="log.up"),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False, id="log.page-up"),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False, id="log.page-down"),
        Binding("g,home", "top", "Top", show=False, id="log.top"),
        Binding("G,end,f", "follow", "Follow", id="log.follow"),
    ]

    COMPONENT_CLASSES = {"log-view--stdout", "log-view--stderr", "log-view--meta"}

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

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.buffer: OutputBuffer | None = None
        self._seen_total = 0
        self._seen_dropped = 0
        self._styles: dict[Stream, Style] | None = None

    def on_mount(self) -> None:
        self.set_interval(FLUSH_INTERVAL, self.flush)

    def show(self, buffer: OutputBuffer | None) -> None:
        """Switch to another operation's output, following it from the bottom."""
        self.buffer = buffer
        self._seen_total = buffer.total if buffer else 0
        self._seen_dropped = buffer.dropped if buffer else 0
        self.virtual_size = Size(buffer.width, len(buffer.lines)) if buffer else Size(0, 0)
        self.new_lines = 0
        self.following = True
        self._to_end()
        self.refresh()

    def flush(self) -> None:
        """Take the lines that arrived since the last flush: one layout update per batch."""
        buffer = self.buffer
        if self.following and not self.is_vertical_scroll_end and not self.is_vertical_scrollbar_grabbed:
            self._to_end()  # the layout moved the bottom (a horizontal scrollbar appeared, a resize)
        if buffer is None or (buffer.total == self._seen_total and buffer.dropped == self._seen_dropped
                              and buffer.width == self.virtual_size.width):
            return
        arrived = buffer.total - self._seen_total
        dropped = buffer.dropped - self._seen_dropped
        self._seen_total, self._seen_dropped = buffer.total, buffer.dropped
        self.virtual_size = Size(buffer.width, len(buffer.lines))
        if self.following:
            self._to_end()
        else:
            if dropped:  # the oldest lines went: keep the lines on screen where they are
                self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False, immediate=True, force=True)
            self.new_lines += arrived
        self.refresh()

    def _to_end(self) -> None:
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)

    @property
    def line_count(self) -> int:
        return len(self.buffer.lines) if self.buffer else 0

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

    # Drawing --------------------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None

    def _stream_styles(self) -> dict[Stream, Style]:
        if self._styles is None:
            base = self.rich_style
            self._styles = {stream: base + self.get_component_rich_style(f"log-view--{stream.value}", partial=True)
                            for stream in Stream}
        return self._styles

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        base = self.rich_style
        if self.buffer is None or index >= len(self.buffer.lines):
            return Strip.blank(width, base)
        stream, text = self.buffer.lines[index]
        strip = Strip([Segment(text, self._stream_styles()[stream])])
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def text_lines(self) -> list[str]:
        """The plain text of every buffered line (tests and save-to-file)."""
        return [text for _stream, text in self.buffer.lines] if self.buffer else []


class LogPanel(Vertical):
    """The log view with its title (which operation) and the "+N new lines" badge."""

    def compose(self) -> ComposeResult:
        yield Label("no operation selected", id="log-title")
        yield LogView(id="log")
        yield Label("", id="log-badge")

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    def show(self, title: str, buffer: OutputBuffer | None) -> None:
        self.query_one("#log-title", Label).update(title)
        self.view.show(buffer)

    def on_log_view_follow_state(self, message: LogView.FollowState) -> None:
        badge = self.query_one("#log-badge", Label)
        paused = not message.following
        badge.set_class(paused, "-visible")
        if paused:
            count = message.new_lines
            news = f"+{count} new line{'s' if count != 1 else ''}" if count else "paused"
            badge.update(f"{news} · G follows")
