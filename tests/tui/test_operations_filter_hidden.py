"""A filter left on in the operations table against a real engine: a new run it hides is counted in the
table's title, in the warning colour, and the first one a filter hides is a toast too (once per filter), so
a run the user just started never vanishes without a word."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

from contree_tui.tui.app import ContreeApp
from tests.tui.helpers import loaded, run_and_wait, toasts, until
from tests.tui.test_operations_keys import filter_with, shown_uuids

SIZE = (160, 40)


def hidden_toasts(app: ContreeApp) -> list[str]:
    return [toast for toast in toasts(app) if "hidden by the filter" in toast]


async def test_a_new_run_the_filter_hides_is_counted_in_the_title_and_told_once(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        marker = uuidlib.uuid4().hex[:12]
        await run_and_wait(pilot, screen, f"echo {marker}-seen > /seen")
        await filter_with(pilot, table, f"{marker}-seen")
        assert len(shown_uuids(table)) == 1 and "hidden" not in (table.border_title or "")

        await run_and_wait(pilot, screen, f"echo {marker}-one > /one")
        first = next(op.uuid for op in table.operations.values() if f"{marker}-one" in op.command)
        await until(pilot, lambda: "1 new hidden" in (table.border_title or ""), what="the title to count it")
        assert "[$text-warning bold]1 new hidden" in (table.border_title or ""), "highlighted"
        assert first not in shown_uuids(table) and len(shown_uuids(table)) == 1, "the filter still applies"
        assert hidden_toasts(app) == [f"operations: a new run is hidden by the filter /{marker}-seen: / then "
                                      "enter on an empty line shows every run"]

        await run_and_wait(pilot, screen, f"echo {marker}-two > /two")
        await until(pilot, lambda: "2 new hidden" in (table.border_title or ""), what="the title to count two")
        assert len(hidden_toasts(app)) == 1, "told once a filter, not once a run"
        svg = app.export_screenshot()
        assert "2&#160;new&#160;hidden" in svg, "drawn in the table's frame"

        await filter_with(pilot, table, marker)  # a filter that shows them: nothing hidden, no count
        assert len(shown_uuids(table)) == 3 and "hidden" not in (table.border_title or "")
        await filter_with(pilot, table, "")
        assert table.border_title == "operations"
