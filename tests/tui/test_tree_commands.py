"""The tree's commands against a real engine: a node's command uses the width the tree pane has (a wide
terminal shows it whole, not cut at 36 cells), and a narrow one cuts it with an ellipsis inside the pane."""

from __future__ import annotations

from pathlib import Path

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.widgets.snapshot_tree import SnapshotTree
from tests.tui.helpers import loaded, run_and_wait, until

COMMAND = "echo " + " ".join(f"word{n:02d}" for n in range(8)) + " > /long"  # 68 cells (a run that
# changes no file makes no snapshot)


def drawn(tree: SnapshotTree, uuid: str) -> str:
    """The tree's line for `uuid` as the terminal shows it (scrolled, cropped to the pane)."""
    node = tree.node_for(uuid)
    assert node is not None
    return tree.render_line(node.line - tree.scroll_offset.y).text.rstrip()


async def test_a_wide_tree_shows_a_long_command_whole_and_a_narrow_one_cuts_it_with_an_ellipsis(
        tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=(260, 40)) as pilot:
        screen = await loaded(pilot)
        made = await run_and_wait(pilot, screen, COMMAND)
        tree = screen.tree
        assert tree.scrollable_content_region.width > 24 + len(COMMAND), "the pane has room for it all"
        await until(pilot, lambda: COMMAND in drawn(tree, made), what="the whole command in the tree")

        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: drawn(tree, made).endswith("…"), what="the command cut at the pane's edge")
        line = drawn(tree, made)
        assert len(line) <= tree.scrollable_content_region.width, line
        assert "echo word00" in line, f"80x24 still shows the command's start: {line!r}"
