"""Another client's run while the cursor is on the newest row (as it is after the TUI's own run, or at start):
the cursor goes to the new row, so the table shows it and the log follows it, as `tail -f` does. Seen as a
stranger with the SDK's seed 002 running beside an open TUI: the rows arrived below the table's last visible
line and the log stayed on an old run. A cursor the user moved up stays where it is."""

from __future__ import annotations

from pathlib import Path

from tests.tui.helpers import loaded, run_and_wait, until
from tests.tui.other_clients import project_app, sdk

SIZE = (160, 45)


async def test_an_sdk_run_is_followed_when_the_cursor_is_on_the_newest_row(tui_engine_dir: Path,
                                                                          tmp_path: Path) -> None:
    app, _folder = project_app(tui_engine_dir, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        for i in range(14):  # more rows than the table's ~12 visible lines
            await run_and_wait(pilot, screen, f"echo own{i} > /own{i}")
        table = screen.table
        assert table.cursor_row == table.row_count - 1, "the TUI's own run is selected"
        start = screen.position.working
        assert start is not None
        async with sdk(tui_engine_dir) as other:
            spawned = await other.client.spawn_instance("sleep 3; echo sdk-followed", start, shell=True,
                                                        disposable=True)
            uuid = str(spawned.uuid)
            await until(pilot, lambda: uuid in table.operations, timeout=10, what="the SDK's run as a row")
            await until(pilot, lambda: table.selected_uuid == uuid, timeout=5, what="the cursor on the SDK's run")
            assert screen.log_panel.view.buffer is screen.buffers[uuid], "the log follows it"
            row = table.get_row_index(uuid)
            assert table.scroll_y <= row < table.scroll_y + table.scrollable_content_region.height - 1, \
                "its row is in view"

            table.move_cursor(row=0)  # the user looks at an old run: the next arrival leaves the cursor there
            await pilot.pause()
            old = table.selected_uuid
            second = str((await other.client.spawn_instance("sleep 1", start, shell=True)).uuid)
            await until(pilot, lambda: second in table.operations, timeout=10, what="the second SDK run")
            await pilot.pause(0.3)
            assert table.selected_uuid == old
