"""How a run's outcome reads, against a real engine: the ✓/✗ beside a tree node is the outcome of the run that
made that node (not of the newest run started from it), and a non-zero exit reads the same in the log's last
line, the operations table and the command log."""

from __future__ import annotations

from pathlib import Path

from rich.style import Style

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.screens.main import MainScreen
from tests.tui.helpers import loaded, run_and_wait, until

SIZE = (140, 40)


def tree_label(screen: MainScreen, uuid: str) -> str:
    node = screen.tree.node_for(uuid)
    assert node is not None, f"{uuid[:8]} is in the tree"
    return screen.tree.render_label(node, Style(), Style()).plain


async def test_a_node_shows_the_outcome_of_the_run_that_made_it(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        good = await run_and_wait(pilot, screen, "echo made-ok > /outcome-ok")
        await until(pilot, lambda: "echo made-ok" in tree_label(screen, good), what="the command beside the node")
        assert "✓ echo made-ok" in tree_label(screen, good), tree_label(screen, good)

        # A run from `good` whose command fails: it makes a node of its own, and that node carries the ✗;
        # `good` was made by a command that succeeded and keeps its ✓.
        bad = await run_and_wait(pilot, screen, "echo made-bad > /outcome-bad; exit 3")
        await until(pilot, lambda: "made-bad" in tree_label(screen, bad), what="the failing run's command")
        assert "✗ echo made-bad" in tree_label(screen, bad), tree_label(screen, bad)
        assert "✓ echo made-ok" in tree_label(screen, good), (
            f"the outcome of the run that made it, not of the run started from it: {tree_label(screen, good)}")
