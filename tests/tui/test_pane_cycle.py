"""`tab` and `shift+tab` cycle the main screen's panes and pass over the command bar: tabbing from the log
landed in the bar, where `tab` completes instead of moving on, and the next `j` + enter ran `j` in the shell
(exit 127). `:` still opens the bar."""

from __future__ import annotations

from pathlib import Path

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.widgets.command_bar import CommandBar
from tests.tui.helpers import loaded, until


async def test_tab_cycles_the_panes_never_the_command_bar(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        screen.tree.focus()
        await pilot.pause()
        seen = []
        for key in ["tab"] * 4 + ["shift+tab"] * 4:
            await pilot.press(key)
            await pilot.pause()
            seen.append(app.focused)
        names = [type(widget).__name__ for widget in seen]
        assert names == ["OperationsTable", "LogView", "SnapshotTree", "OperationsTable",
                         "SnapshotTree", "LogView", "OperationsTable", "SnapshotTree"], names

        await pilot.press("colon")
        await until(pilot, lambda: isinstance(app.focused, CommandBar), what="the bar, with :")
