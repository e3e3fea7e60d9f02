"""Changing a few DataTable cells without redrawing the whole table.

DataTable.update_cell bumps one counter that is part of every render cache key, so one changed cell makes the
table render every visible cell again through Rich (~0.5 ms a cell: 70-130 ms for the operations table of a
160x48 screen while 20 runs stream, measured with bench/bench_tui_logs.py, and it happened on every status
change and every second for the running rows' times). Here the value goes into the table's data, only the
cached renders of that cell are dropped (the row's formatted cells are patched, not rebuilt), and the new
cell is spliced into its row's cached line with only the cell's region refreshed (table_splice.py; else the
row's lines are dropped and the row refreshed): the next frame renders those cells, not the table, nor
their rows.

This reaches into DataTable's caches (Textual is pinned to 8.2.x in pyproject.toml). If they are not as
expected, it falls back to update_cell: slower, never stale. tests/tui/test_operations_updates.py and
test_operations_tick.py check it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets._data_table import default_cell_formatter
from textual.widgets.data_table import ColumnKey, RowKey

from contree_tui.tui.widgets.table_splice import LineState, splice_row


def update_rows(table: DataTable[Any], changes: Mapping[str, Mapping[str, Any]]) -> None:
    """Set these cells (row key → column key → value) and redraw only those cells (or their rows)."""
    changes = {row: values for row, values in changes.items() if values}
    if not changes:
        return
    try:
        rows = {RowKey(row): (table._data[RowKey(row)], table._row_locations.get(RowKey(row))) for row in changes}
        cell_cache, row_cache = table._cell_render_cache, table._row_render_cache
        renderable_cache, _lines = table._row_renderable_cache, table._line_cache  # both as expected
    except (AttributeError, KeyError):
        for row, values in changes.items():
            for column, value in values.items():
                table.update_cell(row, column, value)
        return
    stale_cells: set[tuple[RowKey, ColumnKey]] = set()
    for row, values in changes.items():
        data, _index = rows[RowKey(row)]
        for column, value in values.items():
            if ColumnKey(column) not in data:
                table.update_cell(row, column, value)  # raises CellDoesNotExist, as update_cell would
            data[ColumnKey(column)] = value
            stale_cells.add((RowKey(row), ColumnKey(column)))
    indexes = {index: row for row, (_data, index) in rows.items() if index is not None}
    # One pass over each cache: cell keys start (row key, column key, …), row keys (row key, line, …),
    # renderables (update count, row index): the current ones patched (formatting a row's 7 cells again for
    # one was a third of a spliced cell's cost), others dropped.
    for cache, stale in ((cell_cache, lambda key: (key[0], key[1]) in stale_cells),
                         (row_cache, lambda key: key[0] in rows),
                         (renderable_cache, lambda key: key[1] in indexes)):
        for key in [key for key in cache.keys() if stale(key)]:  # noqa: SIM118 (LRUCache has no __iter__)
            if cache is renderable_cache and key[0] == table._update_count and _patch(table, cache[key], key[1],
                                                                                       changes[indexes[key[1]].value]):
                continue
            cache.discard(key)
    _redraw(table, rows, stale_cells)


def _patch(table: DataTable[Any], renderables: Any, index: int, values: Mapping[str, Any]) -> bool:
    """Put the new values, formatted as DataTable does, into a row's cached renderables; False if unsure."""
    cells = renderables.cells
    if table.rows[table._row_locations.get_key(index)].height != 1:
        return False
    for column, value in values.items():
        position = table._column_locations.get(ColumnKey(column))
        if position is None or position >= len(cells):
            return False
        cells[position] = default_cell_formatter(value, wrap=False, height=1) if value is not None else ""
    return True


def _redraw(table: DataTable[Any], rows: Mapping[RowKey, tuple[Any, int | None]],
            stale_cells: set[tuple[RowKey, ColumnKey]]) -> None:
    """A row on screen gets its changed cells spliced into its line (table_splice.py), else loses its lines
    and is drawn whole; a row scrolled away only loses its lines (lines are keyed by y, …)."""
    window = table.window_region
    header = table.header_height if table.show_header else 0
    # Splicing renders the cell now; a table not on screen (another screen over it: the detail view, `v`)
    # would render cells nobody sees every second, so there its lines are only dropped, drawn when shown.
    shown = _seen(table)
    single = shown and len(table._y_offsets) == table.row_count  # every row one line: y is index + header
    state = LineState(table)
    whole: set[int] = set()
    dirty: list[Region] = []
    for row, (_data, index) in rows.items():
        if index is None:
            continue
        region = table._get_row_region(index) if not single else None
        y = region.y if region is not None else index + header
        bottom = region.bottom if region is not None else y + 1
        on_screen = window.y <= y < window.bottom if single else window.overlaps(region)  # type: ignore[arg-type]
        if not (on_screen and single and splice_row(table, row, index, y,
                                                    {column for r, column in stale_cells if r == row}, state,
                                                    dirty)):
            whole.update(range(y, bottom))
            if on_screen:
                table.refresh_row(index)
    if dirty:
        table.refresh(*dirty)
    if whole:
        line_cache = table._line_cache
        for key in [key for key in line_cache.keys() if key[0] in whole]:  # noqa: SIM118
            line_cache.discard(key)


def _seen(table: DataTable[Any]) -> bool:
    """The table's screen is on top or shows through every screen above it (a modal's see-through
    background). Not Screen.is_current: that counts the screen under the top one even when the top is opaque."""
    stack = table.app.screen_stack
    screen = table.screen
    if screen not in stack or not table.is_on_screen:
        return False
    return all(above.styles.background.a < 1 for above in stack[stack.index(screen) + 1:])
