"""A status change redraws its row only (table_rows.py), against a real engine: DataTable.update_cell dropped
every cached cell, so each change (and each second's running times) rendered the whole table again through
Rich, 70-130 ms a frame while 20 runs streamed (bench/bench_tui_logs.py). The row still shows the new value."""

from __future__ import annotations

from pathlib import Path

from contree_client.models import OperationStatus

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import Operation
from contree_tui.tui.widgets.operations_table import OperationsTable
from tests.tui.helpers import loaded

UUID = "0ddba11" + "0" * 25
OTHER = "0ddba11" + "1" * 25


def row_text(table: OperationsTable, uuid: str) -> str:
    """The row as the table draws it now."""
    y = table.get_row_index(uuid) - round(table.scroll_y) + 1  # + the header line
    assert 0 < y < table.size.height, "the row is on screen"
    return table.render_line(y).text


async def test_a_status_change_redraws_its_row_only(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        op = Operation(uuid=UUID, command="sleep 30", image="b" * 32, status=OperationStatus.EXECUTING)
        table.upsert(Operation(uuid=OTHER, command="sleep 60", image="b" * 32, status=OperationStatus.EXECUTING))
        table.upsert(op)
        table.focus()
        table.select(UUID)
        await pilot.pause()
        assert "⟳ executing" in row_text(table, UUID)
        before = (table._update_count, row_text(table, OTHER))

        op.status, op.exit_code, op.duration = OperationStatus.SUCCESS, 3, 1.5
        table.upsert(op)
        table.tick()
        await pilot.pause()
        assert table._update_count == before[0], "no update that drops every cached cell"
        shown = row_text(table, UUID)
        assert "✗ exit 3" in shown and "1.50s" in shown and "sleep 30" in shown, shown
        assert row_text(table, OTHER) == before[1]
        assert str(table.get_cell(UUID, "status")) == "✗ exit 3"
