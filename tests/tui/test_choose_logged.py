"""`enter` on a tree node (make it working) is an entry of the undo/redo list `@`, as `u`, `U` and runs are:
it was not, so after choosing another branch nothing in `@` led back to where the user had been."""

from __future__ import annotations

from pathlib import Path

from contree_tui.tui.app import ContreeApp
from tests.tui.helpers import loaded, run_and_wait, until


async def test_enter_in_the_tree_is_an_entry_of_the_command_log(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        parent = screen.position.working
        child = await run_and_wait(pilot, screen, "touch /chosen")
        entries = len(screen.command_log.entries)
        tree = screen.tree
        tree.focus()
        tree.move_cursor(tree.node_for(parent))
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: screen.position.working == parent, what="enter to choose the parent")
        new = screen.command_log.entries[entries:]
        assert [(e.kind, e.snapshot) for e in new] == [("jump", parent)], new
        assert parent[:8] in new[0].text
        # the entry before it (the run) leads back to the child
        assert screen.command_log.entries[entries - 1].snapshot == child

        await pilot.press("enter")  # the working one again: no move, no entry
        await pilot.pause()
        assert len(screen.command_log.entries) == entries + 1
