"""Which line of a log each screen row shows, once a filter hides lines and wrapping splits long ones; and the
search that finds them. No Textual here: the log view asks this map, and tests can too.

Lines are named by their absolute index (dropped lines count, as in `OutputBuffer.total`), so a mark such as
the current match survives the buffer dropping its oldest lines. New lines are mapped incrementally (only
what arrived since the last update is looked at), so a flood costs the same with a filter or wrap on.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Protocol

from contree_tui.tui.cell_width import line_cells
from contree_tui.tui.model import LineStore


class LogSource(Protocol):
    """What the log view draws from: an OutputBuffer, or the merged log of several."""

    lines: LineStore
    dropped: int
    width: int

    @property
    def total(self) -> int: ...

    def time_of(self, index: int) -> float | None: ...


@dataclass(frozen=True)
class Search:
    """Literal text, smart case (case-insensitive unless the text has a capital), as in vim and less -i."""

    text: str
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        flags = 0 if any(c.isupper() for c in self.text) else re.IGNORECASE
        object.__setattr__(self, "pattern", re.compile(re.escape(self.text), flags))

    def found_in(self, text: str) -> bool:
        return self.pattern.search(text) is not None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where it occurs in `text`: (start, end) character offsets."""
        return [m.span() for m in self.pattern.finditer(text)]


class RowMap:
    """Screen rows → (line, part of a wrapped line), for one source under the current filter and wrap.

    `matches` holds the lines the search finds (absolute indices, ascending) whether or not it filters."""

    def __init__(self) -> None:
        self.source: LogSource | None = None
        self.search: Search | None = None
        self.filtering = False  # show only the lines the search finds
        self.wrap_width: int | None = None  # cells per row when wrapping, else None
        self.extra = 0  # cells drawn before each line's text (timestamp, operation prefix)
        self.matches: list[int] = []
        self._shown: list[int] = []  # when filtering: the shown lines' absolute indices
        self._ends: list[int] = []  # when wrapping: cumulative row count through each shown line (+ _base)
        self._base = 0  # rows of the lines trimmed off the front of _ends
        self._seen = 0  # source.total already mapped
        self._dropped = 0  # source.dropped already trimmed
        # Wrapping, but no line so far is wider than a row (the source's widest line fits): rows are lines, and
        # no _ends is kept. `w` on 50,000 short lines was a count of every line's cells (25 ms ASCII, 673 ms
        # with a `✓` in each); this way it is none, until a line wider than a row arrives.
        self._one_row_each = False

    def reset(self, source: LogSource | None, *, search: Search | None = None, filtering: bool = False,
              wrap_width: int | None = None, extra: int = 0) -> None:
        """Map `source` afresh under these settings."""
        self.source, self.search, self.wrap_width, self.extra = source, search, wrap_width, extra
        self.filtering = filtering and search is not None
        self.matches, self._shown, self._ends = [], [], []
        self._base = 0
        self._one_row_each = wrap_width is not None
        self._dropped = source.dropped if source else 0
        self._seen = self._dropped
        self.update()

    def update(self) -> tuple[int, int]:
        """Map what arrived and forget what was dropped since the last call: (shown lines that arrived, rows
        that went off the front)."""
        source = self.source
        if source is None:
            return 0, 0
        gone_rows = self._trim(source.dropped) if source.dropped > self._dropped else 0
        start = max(self._seen, source.dropped)
        end = source.total
        if start >= end:
            return 0, gone_rows
        texts, offset = source.lines.texts, source.dropped
        new = range(start, end)
        if self.search is not None:
            found = self.search.found_in
            hits = [i for i in new if found(texts[i - offset])]
            self.matches.extend(hits)
            if self.filtering:
                self._shown.extend(hits)
                new = hits  # type: ignore[assignment]
        if self.wrap_width is not None and self._one_row_each and self.extra + source.width > self.wrap_width:
            # the first line wider than a row: the lines mapped so far took one row each
            self._one_row_each = False
            before = len(self._shown) - len(new) if self.filtering else max(0, self._seen - self._dropped)
            self._base, self._ends = 0, list(range(1, before + 1))
        if self._counting:
            width, extra = max(1, self.wrap_width or 1), self.extra
            total = self._ends[-1] if self._ends else self._base
            lines = texts[start - offset:end - offset] if isinstance(new, range) else [texts[i - offset] for i in new]
            # t or w on a 50,000-line log remaps all of it: 85 ms a line at a time, 18 ms with ASCII lines
            # counted by length (line_cells: the others by their non-ASCII characters only)
            lengths = [len(text) if text.isascii() else line_cells(text) for text in lines]
            ends = accumulate((max(1, -(-(extra + n) // width)) for n in lengths), initial=total)
            next(ends)  # the running total before these lines, not a line's end
            self._ends.extend(ends)
        self._seen = end
        return len(new), gone_rows

    def _trim(self, dropped: int) -> int:
        """The source dropped its lines before `dropped`: forget them; the rows they took."""
        if self.filtering:
            cut = bisect_left(self._shown, dropped)
            del self._shown[:cut]
        else:
            cut = max(0, min(dropped, self._seen) - self._dropped)
        del self.matches[:bisect_left(self.matches, dropped)]
        self._dropped = dropped
        if not self._counting:
            return cut
        cut = min(cut, len(self._ends))
        if not cut:
            return 0
        base = self._ends[cut - 1]
        gone, self._base = base - self._base, base
        del self._ends[:cut]
        return gone

    @property
    def _counting(self) -> bool:
        """Rows are counted per line (_ends): wrapping, and some line is wider than a row."""
        return self.wrap_width is not None and not self._one_row_each

    @property
    def line_count(self) -> int:
        """Lines shown (all of them unless filtering)."""
        if self.source is None:
            return 0
        return len(self._shown) if self.filtering else max(0, self._seen - self._dropped)

    @property
    def row_count(self) -> int:
        if self._counting:
            return (self._ends[-1] - self._base) if self._ends else 0
        return self.line_count

    def line_at(self, position: int) -> int:
        """The absolute index of the `position`-th shown line."""
        return self._shown[position] if self.filtering else self._dropped + position

    def locate(self, row: int) -> tuple[int, int] | None:
        """The line (absolute index) shown on `row` and which of its wrapped parts; None past the end."""
        if row < 0 or row >= self.row_count:
            return None
        if not self._counting:
            return self.line_at(row), 0
        at = row + self._base
        position = bisect_right(self._ends, at)
        start = self._ends[position - 1] if position else self._base
        return self.line_at(position), at - start

    def row_of(self, line: int) -> int:
        """The first row of line `line` (absolute), or of the first shown line after it."""
        position = bisect_left(self._shown, line) if self.filtering else max(0, line - self._dropped)
        position = min(position, self.line_count)
        if not self._counting:
            return position
        return (self._ends[position - 1] if position else self._base) - self._base

    def shown_lines(self) -> list[int]:
        """Every shown line's absolute index, in order."""
        return list(self._shown) if self.filtering else list(range(self._dropped, self._seen))
