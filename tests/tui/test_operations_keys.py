"""Keys of the operations table against a real engine: enter on a row puts the tree's cursor on the snapshot
the run made (on the one it ran on when it made none) and focuses the tree; `/` filters the rows by command,
uuid or status; `s` cycles the sorts, named in the table's title, the cursor staying on its row."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.screens.prompt import PromptScreen
from contree_tui.tui.widgets.operations_table import OperationsTable
from tests.tui.helpers import loaded, run_and_wait, run_in_bar, until

SIZE = (160, 40)


def shown_uuids(table: OperationsTable) -> list[str]:
    return [str(row.key.value) for row in table.ordered_rows]


async def filter_with(pilot, table: OperationsTable, text: str) -> None:  # type: ignore[no-untyped-def]
    table.focus()
    await pilot.press("slash")
    await until(pilot, lambda: isinstance(pilot.app.screen, PromptScreen), what="the filter prompt")
    await pilot.press("ctrl+u", *text, "enter") if text else await pilot.press("ctrl+u", "enter")
    await until(pilot, lambda: not isinstance(pilot.app.screen, PromptScreen), what="the prompt to close")


async def test_enter_on_a_run_puts_the_tree_cursor_on_its_snapshot(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        marker = uuidlib.uuid4().hex[:12]
        first = await run_and_wait(pilot, screen, f"echo {marker} > /first")
        await run_and_wait(pilot, screen, f"echo {marker} > /second")
        table = screen.table
        op = next(op for op in table.operations.values() if op.result == first)

        table.focus()
        table.select(op.uuid)
        await pilot.pause()
        assert screen.tree.cursor_uuid != first
        await pilot.press("enter")
        await until(pilot, lambda: screen.tree.cursor_uuid == first, what="the tree cursor on the run's snapshot")
        assert app.focused is screen.tree, "the tree has the focus"
        assert screen.position.working != first, "enter shows the snapshot; it does not make it working"

        # a run that changed no file made no snapshot: enter goes to the one it ran on
        working = screen.position.working
        known = set(table.operations)
        await run_in_bar(pilot, "true")
        await until(pilot, lambda: any(not o.running for u, o in table.operations.items() if u not in known),
                    what="the run to end")
        [same] = set(table.operations) - known
        table.focus()
        table.select(same)
        await pilot.press("enter")
        await until(pilot, lambda: screen.tree.cursor_uuid == working, what="the tree cursor on the source")


async def test_slash_filters_and_s_sorts_the_operations(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        marker = uuidlib.uuid4().hex[:12]
        await run_and_wait(pilot, screen, f"echo {marker}-ok > /ok")
        await run_and_wait(pilot, screen, f"echo {marker}-bad > /bad; exit 3")
        table = screen.table
        ok, bad = (next(op for op in table.operations.values() if f"{marker}-{name}" in op.command)
                   for name in ("ok", "bad"))
        everyone = len(table.operations)

        await filter_with(pilot, table, marker)
        assert set(shown_uuids(table)) == {ok.uuid, bad.uuid}, "a text in the command"
        assert table.border_title == f"operations · /{marker} (2 of {everyone})"
        await filter_with(pilot, table, "exit 3")
        assert bad.uuid in shown_uuids(table) and ok.uuid not in shown_uuids(table), "a status"
        await filter_with(pilot, table, ok.uuid[:10])
        assert shown_uuids(table) == [ok.uuid], "a uuid"
        await filter_with(pilot, table, "")
        assert len(shown_uuids(table)) == everyone and table.border_title == "operations"

        # a run going while the sorts cycle
        await run_in_bar(pilot, f"echo {marker}-slow; sleep 8")
        await until(pilot, lambda: any(o.running and marker in o.command for o in table.operations.values()),
                    what="the slow run")
        slow = next(o for o in table.operations.values() if o.running and marker in o.command)
        table.focus()
        table.select(ok.uuid)
        assert shown_uuids(table)[-1] == slow.uuid, "as they came: the newest at the bottom"

        await pilot.press("s")
        assert table.border_title == "operations · sort: newest first"
        assert shown_uuids(table)[0] == slow.uuid
        assert table.selected_uuid == ok.uuid, "the cursor stays on its row"
        await pilot.press("s")
        assert table.border_title == "operations · sort: running first"
        assert shown_uuids(table)[0] == slow.uuid
        ended = {u for u, o in table.operations.items() if o.status.is_terminal()}
        await pilot.press("s")
        assert table.border_title == "operations · sort: longest first"
        # among the runs that had ended when it sorted: one ending meanwhile trades its running time (since it
        # was queued) for the server's duration, a little shorter (CI: 1.20 s sorted above 1.25 s)
        durations = [table._elapsed(table.operations[u]) or 0.0 for u in shown_uuids(table) if u in ended]
        assert durations == sorted(durations, reverse=True)
        await pilot.press("s")
        assert table.border_title == "operations · sort: status"
        first_ok = next(i for i, u in enumerate(shown_uuids(table)) if table.operations[u].exit_code == 0
                        and not table.operations[u].running)
        assert shown_uuids(table).index(bad.uuid) < shown_uuids(table).index(slow.uuid) < first_ok, (
            "failures, then runs going, then the rest")
        assert table.selected_uuid == ok.uuid
        await pilot.press("s")
        assert table.border_title == "operations" and shown_uuids(table)[-1] == slow.uuid
