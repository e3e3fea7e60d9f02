"""The operations table in a narrow pane, against a real engine: at 80x24 the command column is on screen with
room to read (it was past the right edge: the fixed columns alone were wider than the pane), the less
important columns giving way first; widening the terminal brings them back, rows and cursor kept."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.widgets.operations_table import COMMAND_MIN, OperationsTable
from tests.tui.helpers import loaded, run_and_wait, until


def command_cells_on_screen(table: OperationsTable) -> int:
    """How many cells of the command column fall inside the table's visible width."""
    assert "command" in table.columns, "the command column exists"
    x = 0
    for key, column in table.columns.items():
        if key.value == "command":
            return table.scrollable_content_region.width - x
        x += column.get_render_width(table)
    raise AssertionError("unreachable")


async def test_at_80x24_the_command_column_is_readable_and_wide_brings_every_column_back(
        tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        marker = uuidlib.uuid4().hex[:12]
        made = await run_and_wait(pilot, screen, f"echo {marker} > /narrow")
        table = screen.table
        op = next(op for op in table.operations.values() if op.result == made)
        assert command_cells_on_screen(table) >= COMMAND_MIN, table.shown_columns
        assert str(table.get_cell(op.uuid, "command")).startswith(f"echo {marker}")
        assert table.shown_columns[0] == "status" and "memory" not in table.shown_columns

        table.focus()
        table.select(op.uuid)
        await pilot.resize_terminal(200, 40)
        await until(pilot, lambda: "memory" in table.shown_columns, what="every column back")
        assert table.selected_uuid == op.uuid, "the cursor stays on its row"
        assert str(table.get_cell(op.uuid, "status")) == "✓ exit 0"
        assert command_cells_on_screen(table) >= COMMAND_MIN
