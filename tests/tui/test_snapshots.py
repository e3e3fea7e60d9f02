"""SVG snapshots of the main screens (pytest-textual-snapshot). The data and the clock are frozen
(tests/tui/frozen.py), so every uuid, age and duration on screen is the same on every run.

After an intended change of the look: `pytest tests/tui/test_snapshots.py --snapshot-update`, then check the
new SVGs (snapshot_report.html) before committing them."""

from __future__ import annotations

from textual.pilot import Pilot

from contree_tui.tui.app import ContreeApp
from tests.tui.frozen import WORKING, FrozenBackend, frozen_clock, uid
from tests.tui.helpers import until

SIZE = (130, 34)


def frozen_app() -> ContreeApp:
    return ContreeApp(FrozenBackend(), working=WORKING, clock=frozen_clock)


async def settled(pilot: Pilot[None]) -> None:
    """Tree loaded, commands shown, the newest finished run's log on screen."""
    app = pilot.app
    assert isinstance(app, ContreeApp)
    screen = app.main
    await until(pilot, lambda: screen.query("#log"), what="the screen to compose")
    view = screen.log_panel.view
    done = uid(5, "c")
    await until(pilot, lambda: screen.tree.node_for(WORKING) is not None and len(screen.tree.commands) >= 5,
                what="the tree")
    screen.table.select(done)
    await until(pilot, lambda: view.buffer is not None and view.buffer.complete
                and view.virtual_size.height == len(view.buffer.lines), what="the log")
    assert len(view.buffer.lines) == 8, "7 lines of output and the exit summary"  # type: ignore[union-attr]
    await pilot.pause(0.1)


def test_main_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=settled)


def test_rollback_confirm_dialog(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def ask(pilot: Pilot[None]) -> None:
        await settled(pilot)
        await pilot.press("u")
        await pilot.pause(0.2)

    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=ask)


def test_help_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def help_(pilot: Pilot[None]) -> None:
        await settled(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=help_)
