"""RowMap, the log view's screen-row map, against a line-by-line count: wrap with wide characters, a filter,
and lines arriving in batches."""

from __future__ import annotations

from rich.cells import cell_len

from contree_tui.tui.model import OutputBuffer, Stream
from contree_tui.tui.widgets.log_rows import RowMap, Search

LINES = ["short", "x" * 95, "日本語のログ行" * 9, "", "wide 🙂 emoji " * 12, "error: " + "e" * 200, "tail"]


def expected_rows(lines: list[str], width: int, extra: int) -> list[int]:
    return [max(1, -(-(extra + cell_len(line)) // width)) for line in lines]


def test_wrapped_rows_count_cells_not_characters() -> None:
    buffer = OutputBuffer()
    buffer.feed(Stream.STDOUT, "\n".join(LINES[:3]) + "\n")
    rows = RowMap()
    rows.reset(buffer, wrap_width=40, extra=9)
    buffer.feed(Stream.STDERR, "\n".join(LINES[3:]) + "\n")  # a second batch, mapped incrementally
    rows.update()
    counts = expected_rows(LINES, 40, 9)
    assert rows.row_count == sum(counts)
    first_rows = [sum(counts[:i]) for i in range(len(LINES))]
    assert [rows.row_of(i) for i in range(len(LINES))] == first_rows
    assert rows.locate(first_rows[2] + counts[2] - 1) == (2, counts[2] - 1)


def test_filtered_and_wrapped() -> None:
    buffer = OutputBuffer()
    buffer.feed(Stream.STDOUT, "\n".join(LINES) + "\n")
    rows = RowMap()
    rows.reset(buffer, search=Search("E"), filtering=True, wrap_width=30)
    shown = [i for i, line in enumerate(LINES) if "E" in line]
    assert rows.shown_lines() == shown == []
    rows.reset(buffer, search=Search("e"), filtering=True, wrap_width=30)  # smart case: any e
    shown = [i for i, line in enumerate(LINES) if "e" in line.lower()]
    assert rows.shown_lines() == shown
    assert rows.row_count == sum(expected_rows([LINES[i] for i in shown], 30, 0))
