"""`m` with no run to merge (none going, none the table shows: here its filter hides them all): the merged
log's title says what will fill it (it read `0 operations` over an empty pane, as if `m` were broken); once a
run starts it joins and the title counts it. (With finished runs shown, `m` merges the last batch:
test_merged_batch.py.)"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Label

from contree_tui.tui.app import ContreeApp
from tests.tui.helpers import loaded, run_in_bar, until


async def test_an_empty_merged_log_says_runs_started_now_join_it(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        panel = screen.log_panel
        screen.table.set_filter("no-run-has-this-in-it")
        panel.view.focus()
        await pilot.press("m")
        title = panel.query_one("#log-title", Label)
        await until(pilot, lambda: panel.merged is not None, what="the merged log")
        assert "nothing running: runs started now join it" in str(title.render()), title.render()

        await run_in_bar(pilot, "sleep 2; echo joined")
        await until(pilot, lambda: "1 operation ·" in str(title.render()), what="the run joining")
