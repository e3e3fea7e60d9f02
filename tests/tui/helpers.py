"""Waiting on a live app: the engine answers in its own time, so tests poll the app's state, not the clock."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.pilot import Pilot

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.op_batch import BATCH_WINDOW
from contree_tui.tui.screens.main import MainScreen


async def until(pilot: Pilot[None], predicate: Callable[[], object], *, timeout: float = 30.0,
                what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        await pilot.pause(0.05)
    await pilot.pause()


async def cancel_leftovers(pilot: Pilot[None], screen: MainScreen) -> None:
    """Cancel the runs still going on the shared engine (an earlier test's, or another client's), and wait
    until the table shows none running: a test that counts the running runs (the split view's panes, the
    merged log's branches) counts its own only."""
    assert screen.backend is not None
    for uuid, op in list(screen.table.operations.items()):
        if op.running:
            await screen.backend.cancel(uuid)
    await until(pilot, lambda: not any(op.running for op in screen.table.operations.values()), timeout=60,
                what="the runs left going by earlier tests to end")
    # ... and are no longer "the last batch" (op_batch.BATCH_WINDOW): runs an earlier test started a few
    # seconds ago would join this test's batch in the split view (CI: six panes for three branches)
    started = [op.created_at.timestamp() for op in screen.table.operations.values() if op.created_at is not None]
    if started:
        wait = max(started) + BATCH_WINDOW + 0.5 - time.time()
        if wait > 0:
            await pilot.pause(wait)


async def loaded(pilot: Pilot[None]) -> MainScreen:
    """The main screen once connected, with the tree loaded and a working snapshot."""
    app = pilot.app
    assert isinstance(app, ContreeApp)
    screen = app.main
    await until(pilot, lambda: screen.backend is not None and screen.position.working is not None
                and screen.tree.node_for(screen.position.working) is not None, what="the tree to load")
    return screen


async def run_in_bar(pilot: Pilot[None], command: str) -> None:
    """Type `command` into the command bar (opened with `:`) and submit it."""
    await pilot.press("colon")
    app = pilot.app
    assert isinstance(app, ContreeApp)
    bar = app.main.query_one("#command-bar")
    assert app.focused is bar, "`:` focuses the command bar"
    await pilot.press(*command)
    assert bar.value == command  # type: ignore[attr-defined]
    await pilot.press("enter")


async def run_and_wait(pilot: Pilot[None], screen: MainScreen, command: str) -> str:
    """Run `command` from the bar; the new working snapshot once the run made it."""
    before = screen.position.working
    await run_in_bar(pilot, command)
    await until(pilot, lambda: screen.position.working != before, what=f"{command!r} to make a snapshot")
    working = screen.position.working
    assert working is not None
    return working


def toasts(app: ContreeApp) -> list[str]:
    """Every notification so far, as `title: message`."""
    return [f"{n.title}: {n.message}" for n in app._notifications]
