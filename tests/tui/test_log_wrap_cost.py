"""`w` (wrap) on a big log: while no line is wider than a row, RowMap counts no line's cells (rows are lines),
and the first wider line switches it to counting, with the same rows as a line-by-line count; a line's cells
(cell_width.line_cells) are rich's cell_len, at the cost of its non-ASCII characters only."""

from __future__ import annotations

import random
import time

from rich.cells import cell_len

from contree_tui.tui.cell_width import line_cells
from contree_tui.tui.model import OutputBuffer, Stream
from contree_tui.tui.widgets.log_rows import RowMap, Search
from tests.tui.test_log_rows import expected_rows


def fed(lines: list[str], max_lines: int = 50_000) -> OutputBuffer:
    buffer = OutputBuffer(max_lines=max_lines)
    buffer.feed(Stream.STDOUT, "".join(f"{line}\n" for line in lines))
    return buffer


def check(rows: RowMap, lines: list[str], width: int, extra: int = 0) -> None:
    """Every row of `rows` against a line-by-line count of `lines` (the shown ones, the oldest first)."""
    counts = expected_rows(lines, width, extra)
    assert rows.row_count == sum(counts)
    first = [sum(counts[:i]) for i in range(len(lines))]
    shown = rows.shown_lines()
    assert [rows.row_of(line) for line in shown] == first
    assert [rows.locate(row) for row in first] == [(line, 0) for line in shown]
    if counts and counts[-1] > 1:
        assert rows.locate(rows.row_count - 1) == (shown[-1], counts[-1] - 1)


def test_wrapping_short_lines_counts_nothing_until_a_wider_line_comes() -> None:
    lines = [f"line {n} ✓" for n in range(20_000)]
    buffer = fed(lines)
    rows = RowMap()
    started = time.perf_counter()
    rows.reset(buffer, wrap_width=40, extra=13)
    took = time.perf_counter() - started
    assert rows.row_count == 20_000 and rows._ends == [], "every line fits: no line's cells were counted"
    assert took < 0.05, f"{took * 1000:.0f} ms to wrap lines that all fit"  # was ~270 ms (a ✓ on each)
    check(rows, lines, 40, 13)
    more = ["w" * 100, "short again", "日本語" * 20]  # the first wider line: the rows are counted from there on
    buffer.feed(Stream.STDERR, "".join(f"{line}\n" for line in more))
    assert rows.update() == (3, 0)
    check(rows, lines + more, 40, 13)


def test_the_switch_keeps_rows_right_with_a_filter_and_dropped_lines() -> None:
    lines = [f"{'match' if n % 3 == 0 else 'other'} {n}" for n in range(1_000)]
    buffer = fed(lines, max_lines=800)  # the oldest lines went
    rows = RowMap()
    rows.reset(buffer, search=Search("match"), filtering=True, wrap_width=30)
    kept = lines[buffer.dropped:]
    check(rows, [line for line in kept if "match" in line], 30)
    more = ["match " + "x" * 70, "other " + "y" * 70, "match end"]
    buffer.feed(Stream.STDOUT, "".join(f"{line}\n" for line in more))
    rows.update()
    kept = (lines + more)[buffer.dropped:]
    check(rows, [line for line in kept if "match" in line], 30)


def test_line_cells_is_rich_cell_len() -> None:
    samples = ["", "ascii", "a ✓ b", "café", "日本語のログ行", "wide 🙂 emoji", "flag 🇫🇷", "tone 👍🏽",
               "family 👨\u200d👩\u200d👧", "heart ❤\ufe0f", "e\u0301", "zero\u200bwidth",
               "\uff46\uff55\uff4c\uff4c", "┌─┐", "\u00ad"]  # full-width letters, a soft hyphen
    pool = [chr(c) for c in [*range(0x20, 0x7F), *range(0xA0, 0x3000, 7), *range(0x1F300, 0x1F600, 3)]]
    rng = random.Random(7)
    samples += ["".join(rng.choice(pool) for _ in range(rng.randint(1, 90))) for _ in range(3_000)]
    assert [line_cells(text) for text in samples] == [cell_len(text) for text in samples]
