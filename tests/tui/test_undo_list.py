"""`@` is the session's undo/redo list: every run, tag, rollback, forward and jump with the working snapshot it
left; `enter` on an entry makes that snapshot working again, recorded as a new entry. Against a real engine."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

from textual.pilot import Pilot

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.screens.command_log import CommandLogScreen
from contree_tui.tui.screens.main import MainScreen
from tests.tui.helpers import loaded, run_and_wait, until
from tests.tui.test_command_bar import SIZE, app_in, submit, toasts


async def open_log(pilot: Pilot[None]) -> CommandLogScreen:
    await pilot.press("at")
    await until(pilot, lambda: isinstance(pilot.app.screen, CommandLogScreen), what="the command log")
    log_screen = pilot.app.screen
    assert isinstance(log_screen, CommandLogScreen)
    return log_screen


async def jump_from(pilot: Pilot[None], row: int) -> None:
    """In the open `@`, enter on entry `row`."""
    log_screen = pilot.app.screen
    assert isinstance(log_screen, CommandLogScreen)
    while log_screen.query_one("#command-log-table").cursor_row > row:  # type: ignore[attr-defined]
        await pilot.press("up")
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, MainScreen), what="the log to close")


async def test_enter_on_an_entry_of_the_command_log_makes_its_snapshot_working_and_is_undoable(
        tui_engine_dir: Path, tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        base = screen.position.working
        first = await run_and_wait(pilot, screen, f"echo one > /one # {uuidlib.uuid4().hex[:6]}")
        second = await run_and_wait(pilot, screen, f"echo two > /two # {uuidlib.uuid4().hex[:6]}")
        name = f"undo-{uuidlib.uuid4().hex[:6]}"
        await submit(pilot, f"tag {name}")
        await until(pilot, lambda: name in screen.lineage.tags(), what="the tag")
        await pilot.press("u")
        await until(pilot, lambda: screen.position.working == first, what="the rollback")

        log_screen = await open_log(pilot)
        rows = log_screen.rows()
        assert [row[1] for row in rows] == ["run", "run", "tag", "rollback"], rows
        snapshots = [row[2].strip("● ") for row in rows]
        assert snapshots == [first[:8], second[:8], second[:8], first[:8]], "each entry names the snapshot it left"
        assert rows[3][2].startswith("●"), "the working one is marked"
        assert base not in (first, second)

        await jump_from(pilot, 1)  # the second run's entry
        assert screen.position.working == second, "enter on an entry makes its snapshot working"
        assert screen.tree.working == second
        assert any("jumped: working: " + second[:8] in t for t in toasts(app)), toasts(app)
        jump = screen.command_log.entries[-1]
        assert jump.kind == "jump" and jump.snapshot == second

        log_screen = await open_log(pilot)
        assert [row[1] for row in log_screen.rows()][-1] == "jump", "the jump is an entry of its own"
        await jump_from(pilot, 3)  # the entry before the jump (the rollback): undoes it
        assert screen.position.working == first
        assert [e.kind for e in screen.command_log.entries][-2:] == ["jump", "jump"]

        await open_log(pilot)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="escape to close")
        assert screen.position.working == first, "closing moves nothing"
        assert isinstance(app, ContreeApp)
