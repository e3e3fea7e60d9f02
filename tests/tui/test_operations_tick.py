"""The operations table's 1 s tick, against a real engine: each running row's time changes, and only those
cells are drawn again (table_splice.py), not their rows — the rows then look exactly as a table drawn from
scratch would draw them, the cursor's row (its highlight) included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from contree_client.models import OperationStatus
from textual.strip import Strip

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import Operation
from contree_tui.tui.widgets.operations_table import OperationsTable
from tests.tui.helpers import loaded, until

RUNS = [f"0ddba11{n:x}" + "2" * 24 for n in range(6)]


def cells(strip: Strip) -> list[tuple[str, object]]:
    """Each cell of a line with its style: two strips cut into other segments compare equal."""
    return [(char, segment.style) for segment in strip for char in segment.text]


def drawn(table: OperationsTable) -> list[list[tuple[str, object]]]:
    return [cells(table.render_line(y)) for y in range(table.size.height)]


def from_scratch(table: OperationsTable) -> list[list[tuple[str, object]]]:
    """The lines as a table with no cached render draws them."""
    for cache in (table._line_cache, table._row_render_cache, table._cell_render_cache,
                  table._row_renderable_cache):
        cache.clear()
    return drawn(table)


def running_rows(table: OperationsTable) -> list[datetime]:
    """RUNS as running rows started 5 s and more ago, on a clock the test moves (now[0])."""
    now = [datetime.now(UTC)]
    table.clock = lambda: now[0]
    for n, uuid in enumerate(RUNS):
        table.upsert(Operation(uuid=uuid, command=f"sleep {60 + n}", image="b" * 32,
                               status=OperationStatus.EXECUTING, created_at=now[0] - timedelta(seconds=5 + n)))
    return now


async def test_the_tick_redraws_only_the_running_rows_times_and_they_read_as_a_fresh_table(
        tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        now = running_rows(table)
        table.focus()
        table.select(RUNS[-1])  # the table scrolled to its end: every run on screen (the session's engine has more)
        await pilot.pause()
        table.select(RUNS[2])  # the cursor's row is drawn in the cursor's colours: its cell must be too
        await pilot.pause()
        before = drawn(table)

        rebuilt: list[object] = []
        build = table._render_line_in_row
        table._render_line_in_row = lambda *args, **kw: rebuilt.append(args[0]) or build(*args, **kw)  # type: ignore[method-assign]
        now[0] += timedelta(seconds=1)
        table.tick()
        await pilot.pause()
        after = drawn(table)
        assert rebuilt == [], "no row was built again for its time"
        changed = {y for y, (a, b) in enumerate(zip(after, before, strict=True)) if a != b}
        # (a run an earlier test left going would change too: the session's engine is shared)
        assert {table.get_row_index(uuid) - round(table.scroll_y) + 1 for uuid in RUNS} <= changed, changed
        assert all(0 < y < table.size.height for y in changed), "the runs' rows are on screen"
        row = "".join(char for char, _style in after[table.get_row_index(RUNS[0]) - round(table.scroll_y) + 1])
        assert "6.00s" in row and "sleep 60" in row, row
        table._render_line_in_row = build  # type: ignore[method-assign]
        assert after == from_scratch(table), "spliced lines read exactly as freshly drawn ones"

        table.move_cursor(row=table.get_row_index(RUNS[4]))  # the cursor moves: no line of the old state is used
        await pilot.pause()
        now[0] += timedelta(seconds=1)
        table.tick()
        await pilot.pause()
        assert drawn(table) == from_scratch(table)
        table.move_cursor(row=table.get_row_index(RUNS[2]))
        await pilot.pause()
        assert drawn(table) == from_scratch(table), "back on the first row: its line is not the one cached then"


async def test_under_another_screen_the_tick_renders_no_cell_and_the_table_is_right_when_back(
        tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        now = running_rows(table)
        table.select(RUNS[-1])
        await pilot.pause()
        drawn(table)
        assert screen.position.working is not None
        screen.inspect_snapshot(screen.position.working)  # the detail view covers the main screen
        await until(pilot, lambda: app.screen is not screen, what="the detail view")

        rendered: list[object] = []
        render_cell = table._render_cell
        table._render_cell = lambda *args, **kw: rendered.append(args) or render_cell(*args, **kw)  # type: ignore[method-assign]
        now[0] += timedelta(seconds=1)
        table.tick()
        assert rendered == [], "no cell rendered for a table nobody sees"
        table._render_cell = render_cell  # type: ignore[method-assign]

        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, what="back on the main screen")
        row = "".join(char for char, _style in drawn(table)[table.get_row_index(RUNS[0]) - round(table.scroll_y) + 1])
        assert "6.00s" in row, row
        assert drawn(table) == from_scratch(table)
