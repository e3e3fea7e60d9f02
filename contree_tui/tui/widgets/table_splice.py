"""Redrawing one DataTable cell, not its row: the row's cached line gets the new cell's segments spliced in
where the old ones were, and only the cell's region is refreshed.

table_rows.py dropped the row's cached line, so the next frame built the whole row again (every cell looked
up and styled, the line cropped and simplified: ~1.1 ms a row, 16 ms a second for the 14 running rows a
160x48 screen shows, since each running row's time changes every second). Spliced, a frame renders the
changed cells only (one Rich render each) and the compositor takes the cells' regions, not the rows'.

A line is spliced only for the table's current state (scroll, cursor, hover, style, focus: the line cache's
key); lines cached for another state are dropped, so a cursor coming back never finds an old value. Anything
unusual (fixed columns, row labels, a row taller than one line, a cell outside the visible columns) is left to the row
redraw. Reaches into DataTable's caches like table_rows.py (Textual pinned to 8.2.x).
"""

from __future__ import annotations

from typing import Any

from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey


class LineState:
    """The part of DataTable._render_line's cache key that is not the line's y: lines cached with another
    state were drawn for another cursor, scroll or focus."""

    def __init__(self, table: DataTable[Any]) -> None:
        width = table.size.width
        scroll_x = table.scroll_offset.x
        self.base_style = table.rich_style
        self.pseudo = table.get_pseudo_class_state()
        self.scroll_x = scroll_x
        self.key = (scroll_x, scroll_x + width, width, table.cursor_coordinate, table.hover_coordinate,
                    self.base_style, table.cursor_type, table._show_hover_cursor, table._update_count, self.pseudo)
        self._table = table
        self._row_styles: dict[int, Any] = {}

    def row_style(self, index: int) -> Any:
        """The row's style (zebra stripes: one of two), looked up once an update (~0.5 ms each)."""
        parity = index % 2 if index >= self._table.fixed_rows else -1 - index
        style = self._row_styles.get(parity)
        if style is None:
            style = self._row_styles[parity] = self._table._get_row_style(index, self.base_style)
        return style


def splice_row(table: DataTable[Any], row_key: RowKey, index: int, y: int, columns: set[ColumnKey],
               state: LineState, dirty: list[Region]) -> bool:
    """Put the new `columns` cells of the row at `index` (line `y`, counting the header) into its cached
    lines and add their regions to `dirty` (the caller refreshes them, in one call); False when the row must
    be drawn whole (the caller drops its lines)."""
    if table.fixed_columns or (table._labelled_row_exists and table.show_row_labels) or table.rows[row_key].height != 1:
        return False
    line_cache = table._line_cache
    keys = [key for key in line_cache.keys() if key[0] == y]  # noqa: SIM118 (LRUCache has no __iter__)
    current = [key for key in keys if key[1:] == state.key]
    for key in keys:
        if key not in current:
            line_cache.discard(key)
    if not current:
        return False  # not drawn in this state yet: the next frame builds it, nothing to refresh early
    cells = _cells(table, index, columns, state)
    if cells is None:
        for key in current:
            line_cache.discard(key)
        return False
    for key in current:
        strip = line_cache[key]
        for x, width, segments in cells:
            strip = Strip.join([strip.crop(0, x), Strip(segments, width), strip.crop(x + width, strip.cell_length)])
        line_cache.discard(key)  # LRUCache.set leaves a key it holds as it was
        line_cache[key] = strip
    top = y - round(table.scroll_offset.y)
    dirty.extend(Region(x, top, width, 1) for x, width, _segments in cells)
    return True


def _cells(table: DataTable[Any], index: int, columns: set[ColumnKey],
           state: LineState) -> list[tuple[int, int, list[Any]]] | None:
    """(x in the visible line, width, segments) of each changed cell, rendered as _render_line_in_row does;
    None if one is not wholly in the visible columns."""
    table._pseudo_class_state = state.pseudo  # what render_lines sets before a frame: the cell cache's key
    row_style = state.row_style(index)
    x = -state.scroll_x
    out = []
    for column_index, column in enumerate(table.ordered_columns):
        width = column.get_render_width(table)
        if column.key in columns:
            if x < 0 or x + width > table.size.width:
                return None
            where = Coordinate(index, column_index)
            lines = table._render_cell(
                index, column_index, row_style, width,
                cursor=table._should_highlight(table.cursor_coordinate, where, table.cursor_type),
                hover=table._should_highlight(table.hover_coordinate, where, table.cursor_type))
            out.append((x, width, lines[0]))
        x += width
    return out
