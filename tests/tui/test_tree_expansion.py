"""Watching parallel runs in the tree, against a real engine: the branches a `:parallel` makes appear on
screen by themselves (no `l` to open anything), and making another snapshot working (enter, `u`) collapses
nothing that was open."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.widgets.snapshot_tree import SnapshotTree
from tests.tui.helpers import loaded, until

SIZE = (140, 40)


def on_screen(tree: SnapshotTree, uuid: str) -> bool:
    """`uuid` has a line of the tree (not merely a node under a collapsed one)."""
    tree.last_line  # noqa: B018 - builds the lines if a change dropped them
    node = tree.node_for(uuid)
    return node is not None and node.line >= 0


async def test_parallel_branches_show_themselves_and_choosing_working_collapses_nothing(
        tui_engine_dir: Path, tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        tree = screen.tree
        working = screen.position.working
        assert working is not None
        marker = uuidlib.uuid4().hex[:8]
        commands = [f"echo {n} > /par-{marker}" for n in range(3)]
        await pilot.press("colon", *(":parallel " + " ;; ".join(commands)), "enter")
        await until(pilot, lambda: sum(1 for op in screen.table.operations.values()
                                       if op.command in commands and op.result) == 3, what="three branches")
        branches = [op.result for op in screen.table.operations.values() if op.command in commands]
        await until(pilot, lambda: all(b in screen.lineage.snapshots for b in branches), what="them in the lineage")
        await until(pilot, lambda: all(on_screen(tree, b) for b in branches),  # type: ignore[arg-type]
                    what="the three branches on screen without a key", timeout=5)
        assert on_screen(tree, working) and screen.position.working == working
        for branch in branches:
            row = tree.row_of(branch)  # type: ignore[arg-type]
            assert row is not None and row.parent == working, "each drawn hanging from the working snapshot"

        # another snapshot made working (enter on a branch, then u back): nothing shown before disappears
        before = tree.shown
        tree.focus()
        tree.move_cursor(tree.node_for(branches[0]))  # type: ignore[arg-type]
        await until(pilot, lambda: tree.cursor_uuid == branches[0], what="the cursor on a branch")
        await pilot.press("enter")
        await until(pilot, lambda: screen.position.working == branches[0], what="the branch made working")
        assert tree.shown >= before, f"collapsed by set_working: {before - tree.shown}"
        assert all(on_screen(tree, b) for b in [working, *branches])  # type: ignore[arg-type]
        await pilot.press("u")
        await until(pilot, lambda: screen.position.working == working, what="the rollback")
        assert tree.shown >= before and all(on_screen(tree, b) for b in branches)  # type: ignore[arg-type]
