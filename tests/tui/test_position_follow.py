"""One working position for the TUI and the headless CLI in the same folder: with the TUI open, a
`contree-tui run` in another terminal moves the position, and the TUI follows it (status bar, the tree's
working marker, the CLI's step in the command log) within a second, no reload. A `:` run that started before
another client moved the position does not move it to its result (a silent fork, and a false parent/child
pair in `contree-tui history`): the position stays where the CLI put it, a toast says so, and the run's
snapshot is a branch of the one it ran on."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets._toast import Toast

from contree_tui.tui.app import ContreeApp
from tests.tui.helpers import loaded, run_in_bar, until
from tests.tui.other_clients import cli, cli_run, project_app

SIZE = (160, 45)


def toasts(app: ContreeApp) -> list[str]:
    return [str(toast.render()) for toast in app.screen.query(Toast)]


async def test_the_tui_follows_a_move_the_cli_makes_while_it_is_open(tui_engine_dir: Path, tmp_path: Path) -> None:
    app, folder = project_app(tui_engine_dir, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        start = screen.position.working
        assert start is not None

        moved = await cli_run(tui_engine_dir, folder, "echo cli4 > /cli4")
        made = moved["position"]
        assert made and made != start and moved["source"] == start
        await until(pilot, lambda: screen.position.working == made, timeout=10, what="the TUI to follow the CLI")
        await until(pilot, lambda: screen.tree.working == made, timeout=10, what="the tree's working marker")
        assert made[:8] in screen.status_bar.working, screen.status_bar.working
        assert screen.lineage.parent_of(made) == start  # the CLI's snapshot, in the tree under its parent
        steps = [e for e in screen.command_log.entries if "cli4" in e.text]
        assert steps and steps[-1].snapshot == made and steps[-1].text.startswith("another client"), steps
        assert any("moved the working snapshot" in t for t in toasts(app)), toasts(app)


async def test_a_run_started_before_the_cli_moved_the_position_does_not_fork_silently(
        tui_engine_dir: Path, tmp_path: Path) -> None:
    app, folder = project_app(tui_engine_dir, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        start = screen.position.working
        assert start is not None
        # the TUI's run is slow; the CLI's, started while it runs, ends first and moves the position
        await run_in_bar(pilot, "sleep 10; echo tui > /tui")  # longer than the CLI takes, even on a busy machine
        await until(pilot, lambda: any(op.running and "echo tui" in op.command
                                       for op in screen.table.operations.values()), what="the TUI's run")
        moved = await cli_run(tui_engine_dir, folder, "echo cli5 > /cli5")
        cli_made = moved["position"]
        ours = next(op for op in screen.table.operations.values() if "echo tui" in op.command)
        assert ours.running, "the CLI's run must end while the TUI's still runs"
        assert cli_made and moved["source"] == start
        await until(pilot, lambda: ours.status.is_terminal() and screen.position.working == cli_made
                    and any("not moved" in t or "stays there" in t for t in toasts(app)),
                    timeout=30, what="the TUI's run to end and say it did not move the position")
        assert ours.result and ours.result != start
        await pilot.pause(1.0)  # nothing moves it afterwards either
        assert screen.position.working == cli_made
        assert screen.lineage.parent_of(ours.result) == start  # a branch of the snapshot it ran on
        history = json.loads(await cli(tui_engine_dir, folder, "history", "--json"))
        pairs = {(e["previous"], e["image"]) for e in history if e["previous"] != e["image"]}
        assert (cli_made, ours.result) not in pairs, history  # no false parent/child pair
        assert history[-1]["operation"] == ours.uuid and history[-1]["image"] == cli_made
