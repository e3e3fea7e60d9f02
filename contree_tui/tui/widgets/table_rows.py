"""Changing a few DataTable cells without redrawing the whole table.

DataTable.update_cell bumps one counter that is part of every render cache key, so one changed cell makes the
table render every visible cell again through Rich (~0.5 ms a cell: 70-130 ms for the operations table of a
160x48 screen while 20 runs stream, measured with bench/bench_tui_logs.py, and it happened on every status
change and every second for the running rows' times). Here the value goes into the table's data, only the
cached renders of that cell and its row's lines are dropped, and only that row is refreshed if it is on
screen: the next frame renders those cells, not the table.

This reaches into DataTable's caches (Textual is pinned to 8.2.x in pyproject.toml). If they are not as
expected, it falls back to update_cell: slower, never stale. tests/tui/test_operations_updates.py checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey


def update_rows(table: DataTable[Any], changes: Mapping[str, Mapping[str, Any]]) -> None:
    """Set these cells (row key → column key → value) and redraw only those cells and their rows."""
    changes = {row: values for row, values in changes.items() if values}
    if not changes:
        return
    try:
        rows = {RowKey(row): (table._data[RowKey(row)], table._row_locations.get(RowKey(row))) for row in changes}
        cell_cache, row_cache = table._cell_render_cache, table._row_render_cache
        renderable_cache, line_cache = table._row_renderable_cache, table._line_cache
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
    indexes = {index for _data, index in rows.values()}
    regions = [table._get_row_region(index) for index in indexes]
    lines = {y for region in regions for y in range(region.y, region.bottom)}
    # One pass over each cache: cell keys start (row key, column key, …), row keys (row key, line, …),
    # renderables (update count, row index), lines (y, …).
    for cache, stale in ((cell_cache, lambda key: (key[0], key[1]) in stale_cells),
                         (row_cache, lambda key: key[0] in rows),
                         (renderable_cache, lambda key: key[1] in indexes),
                         (line_cache, lambda key: key[0] in lines)):
        for key in [key for key in cache.keys() if stale(key)]:  # noqa: SIM118 (LRUCache has no __iter__)
            cache.discard(key)
    for index in indexes:  # only the lines of rows on screen are drawn again (none for a row scrolled away)
        table.refresh_row(index)
