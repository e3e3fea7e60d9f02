"""Changing a few DataTable cells without redrawing the whole table.

DataTable.update_cell bumps one counter that is part of every render cache key, so one changed cell makes the
table render every visible cell again through Rich (~0.5 ms a cell: 70-130 ms for the operations table of a
160x48 screen while 20 runs stream, measured with bench/bench_tui_logs.py, and it happened on every status
change and every second for the running rows' times). Here the value goes into the table's data and only the
cached renders of that row are dropped, so the next frame renders one row, not the table.

This reaches into DataTable's caches (Textual is pinned to 8.2.x in pyproject.toml). If they are not as
expected, it falls back to update_cell: slower, never stale. tests/tui/test_operations_updates.py checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey


def update_row(table: DataTable[Any], row: str, values: Mapping[str, Any]) -> None:
    """Set these cells of `row` (column key → value) and redraw only that row."""
    if not values:
        return
    try:
        data = table._data[RowKey(row)]
        index = table._row_locations.get(RowKey(row))
        caches = (table._cell_render_cache, table._row_render_cache, table._row_renderable_cache,
                  table._line_cache)
    except (AttributeError, KeyError):
        for column, value in values.items():
            table.update_cell(row, column, value)
        return
    for column, value in values.items():
        if ColumnKey(column) not in data:
            table.update_cell(row, column, value)  # raises CellDoesNotExist, as update_cell would
        data[ColumnKey(column)] = value
    cells, rows, renderables, lines = caches
    key = RowKey(row)
    # cell cache keys start (row key, column key, …), row caches (row key, line, …), renderables
    # (update count, row index); a line cache entry is cheap to rebuild from the row caches: all go.
    for cache, position, wanted in ((cells, 0, key), (rows, 0, key), (renderables, 1, index)):
        for stale in [cached for cached in cache.keys() if cached[position] == wanted]:  # noqa: SIM118 (no __iter__)
            cache.discard(stale)
    lines.clear()
    table.refresh()
