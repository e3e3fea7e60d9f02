"""One file's line diff (client/file_diff.py), coloured: side by side where the terminal has room (≥ 140
columns: each side still gets ~45 columns of text beside the list), unified (`diff -u`) below that; the
layout follows a resize. For a binary file or one past the read cap, its sizes old → new.

A Line-API view (like Textual's Log): only the rows on screen are rendered, so a 20,000-line diff costs what a
screenful does, and a resize re-lays the rows without re-reading anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from contree_tui.client.file_diff import DiffKind, FileDiff, RowTag

SIDE_BY_SIDE_COLUMNS = 140  # terminal width from which the two versions stand side by side
GUTTER = 6  # a line number (up to 99,999) and a space
TAB = 4  # columns a tab takes: a raw tab would let the terminal, not the view, decide where the text goes


@dataclass(frozen=True, slots=True)
class _Line:
    kind: str  # "note", "hunk", "equal", "removed", "added", "pair"
    old_no: int | None = None
    old: str | None = None
    new_no: int | None = None
    new: str | None = None
    tag: RowTag = RowTag.EQUAL


def _cells(text: str | None) -> str | None:
    """A line as the terminal should show it: tabs expanded, other control characters made visible."""
    if text is None:
        return None
    text = text.expandtabs(TAB)
    return text if text.isprintable() else "".join(c if c.isprintable() else "\ufffd" for c in text)


class DiffView(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("j,down", "scroll_down", "Down", show=False, id="diff.down"),
        Binding("k,up", "scroll_up", "Up", show=False, id="diff.up"),
        Binding("g,home", "scroll_home", "Top", show=False, id="diff.top"),
        Binding("G,end", "scroll_end", "Bottom", show=False, id="diff.bottom"),
    ]

    COMPONENT_CLASSES = {"diff-view--added", "diff-view--removed", "diff-view--hunk", "diff-view--gutter",
                         "diff-view--note"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.diff: FileDiff | None = None
        self._unified: list[_Line] = []
        self._paired: list[_Line] = []

    @property
    def side_by_side(self) -> bool:
        return self.app.size.width >= SIDE_BY_SIDE_COLUMNS

    def show(self, diff: FileDiff) -> None:
        self.diff = diff
        notes = [_Line("note", old=diff.summary)] if diff.kind is not DiffKind.TEXT or not diff.hunks else []
        self._unified, self._paired = list(notes), list(notes)
        for hunk in diff.hunks:
            self._unified.append(_Line("hunk", old=hunk.header))
            self._paired.append(_Line("hunk", old=hunk.header))
            for tag, old_no, new_no, text in hunk.unified():
                kind = {RowTag.EQUAL: "equal", RowTag.REMOVED: "removed", RowTag.ADDED: "added"}[tag]
                self._unified.append(_Line(kind, old_no, _cells(text), new_no, _cells(text), tag))
            self._paired += [_Line("pair", r.old_no, _cells(r.old), r.new_no, _cells(r.new), r.tag)
                             for r in hunk.rows]
        self.scroll_to(0, 0, animate=False)
        self._relayout()

    @property
    def lines(self) -> list[str]:
        """The view as plain text at its current layout (what a user reads; tests read it too)."""
        width = max(self.scrollable_content_region.width, 20)
        return [self._text(line, width).plain.rstrip() for line in self._rows]

    @property
    def _rows(self) -> list[_Line]:
        return self._paired if self.side_by_side else self._unified

    def _relayout(self) -> None:
        """The virtual size of the current layout (side by side fits the width; unified scrolls sideways)."""
        if self.side_by_side:
            width = self.scrollable_content_region.width
        else:
            width = max((GUTTER * 2 + 2 + len(line.old or "") for line in self._unified), default=0)
        self.virtual_size = Size(width, len(self._rows))
        self.refresh()

    def on_resize(self) -> None:
        if self.diff is not None:
            self._relayout()

    # Drawing --------------------------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"diff-view--{name}")

    def _number(self, number: int | None) -> Text:
        return Text(f"{number:>{GUTTER - 1}} " if number is not None else " " * GUTTER, self._style("gutter"))

    def _text(self, line: _Line, width: int) -> Text:
        if line.kind == "note":
            return Text(line.old or "", self._style("note"))
        if line.kind == "hunk":
            return Text(line.old or "", self._style("hunk"))
        if line.kind != "pair":
            style = {"removed": self._style("removed"), "added": self._style("added")}.get(line.kind, Style())
            sign = {"removed": "-", "added": "+"}.get(line.kind, " ")
            text = Text.assemble(self._number(line.old_no if line.kind != "added" else None),
                                 self._number(line.new_no if line.kind != "removed" else None))
            text.append(f"{sign}{line.old or ''}", style)
            return text
        half = max(10, (width - 1) // 2)
        left = self._half(line.old_no, line.old, "-", line.tag in (RowTag.REMOVED, RowTag.CHANGED), "removed", half)
        right = self._half(line.new_no, line.new, "+", line.tag in (RowTag.ADDED, RowTag.CHANGED), "added", half)
        return Text.assemble(left, Text("│", self._style("gutter")), right)

    def _half(self, number: int | None, text: str | None, sign: str, changed: bool, name: str, width: int) -> Text:
        cell = self._number(number)
        style = self._style(name) if changed else Style()
        cell.append(f"{sign if changed else ' '}{text if text is not None else ''}", style)
        cell.truncate(width, overflow="ellipsis", pad=True)
        if text is not None and changed:
            cell.stylize(style, GUTTER)  # the changed line's background runs to the middle
        return cell

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        rows = self._rows
        if index >= len(rows):
            return Strip.blank(width, self.rich_style)
        text = self._text(rows[index], width)
        text.end = ""
        segments = [Segment(s.text, s.style) for s in text.render(self.app.console) if s.text != "\n"]
        strip = Strip(segments).crop(scroll_x, scroll_x + width)
        return strip.extend_cell_length(width).apply_style(self.rich_style)
