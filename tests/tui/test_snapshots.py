"""SVG snapshots of the main screens (pytest-textual-snapshot). The data and the clock are frozen
(tests/tui/frozen.py), so every uuid, age and duration on screen is the same on every run.

After an intended change of the look: `pytest tests/tui/test_snapshots.py --snapshot-update`, then check the
new SVGs (snapshot_report.html) before committing them."""

from __future__ import annotations

from textual.command import CommandInput, CommandList, CommandPalette
from textual.pilot import Pilot

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.screens.snapshot_detail import SnapshotDetailScreen
from contree_tui.tui.widgets.diff_view import DiffView
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


def test_main_screen_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """At 80x24 the operations table keeps status and command on screen and drops the other columns."""
    assert snap_compare(frozen_app(), terminal_size=(80, 24), run_before=settled)


def test_rollback_toast(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """`u` rolls back at once (no question): the toast names where it went and how to undo."""
    async def roll_back(pilot: Pilot[None]) -> None:
        await settled(pilot)
        await pilot.press("u")
        await pilot.pause(0.2)

    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=roll_back)


def test_help_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def help_(pilot: Pilot[None]) -> None:
        await settled(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=help_)


async def detail(pilot: Pilot[None]) -> SnapshotDetailScreen:
    """`i` on the working snapshot in the tree: its detail view, the root listed."""
    await settled(pilot)
    app = pilot.app
    assert isinstance(app, ContreeApp)
    tree = app.main.tree
    tree.focus()
    node = tree.node_for(WORKING)
    assert node is not None
    tree.move_cursor(node)
    await until(pilot, lambda: tree.cursor_uuid == WORKING, what="the tree's cursor on the working snapshot")
    await pilot.press("i")
    await until(pilot, lambda: isinstance(app.screen, SnapshotDetailScreen), what="the detail view")
    screen = app.screen
    assert isinstance(screen, SnapshotDetailScreen)
    await until(pilot, lambda: "/app" in screen.targets, what="the root listed")
    return screen


async def open_row(pilot: Pilot[None], screen: SnapshotDetailScreen, key: str) -> None:
    """Move to the row `key` with j, as a user would, and press enter."""
    table = screen.entry_list
    await until(pilot, lambda: key in screen.targets, what=f"{key} in the list")
    table.move_cursor(row=0)
    for _ in range(table.row_count):
        if str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value) == key:
            await pilot.press("enter")
            return
        await pilot.press("j")
    raise AssertionError(f"{key} not reachable with j")


def test_snapshot_detail_files(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """/app listed (a directory, a file), the file open in the viewer."""
    async def browse(pilot: Pilot[None]) -> None:
        screen = await detail(pilot)
        await open_row(pilot, screen, "/app")
        await until(pilot, lambda: screen.directory == "/app" and "/app/Makefile" in screen.targets,
                    what="/app listed")
        assert set(screen.targets) == {"..", "/app/Makefile", "/app/build"}
        await open_row(pilot, screen, "/app/Makefile")
        await until(pilot, lambda: any("run-specs" in line for line in screen.view.lines), what="the Makefile")
        await pilot.pause(0.1)

    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=browse)


async def diff_of(pilot: Pilot[None], path: str) -> SnapshotDetailScreen:
    """The diff against the parent listed, `path`'s line diff open."""
    screen = await detail(pilot)
    await pilot.press("d")
    await until(pilot, lambda: screen.mode == "diff", what="the diff")
    assert screen.diff is not None
    assert screen.diff.summary == "3 added, 2 modified, 1 removed"
    await open_row(pilot, screen, path)
    view = screen.query_one(DiffView)
    await until(pilot, lambda: view.diff is not None and view.diff.path == path, what="the line diff")
    await pilot.pause(0.1)
    return screen


def test_snapshot_detail_diff(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The diff against the parent: added, modified (by size, and by content only), removed; the Makefile,
    rewritten with the same size within the same second, open in its line diff: unified below 140 columns."""
    async def diff(pilot: Pilot[None]) -> None:
        await diff_of(pilot, "/app/Makefile")

    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=diff)


def test_snapshot_detail_diff_side_by_side(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """From 140 columns the two versions stand side by side, the changed line paired with its new one."""
    async def diff(pilot: Pilot[None]) -> None:
        await diff_of(pilot, "/app/Makefile")

    assert snap_compare(frozen_app(), terminal_size=(160, 34), run_before=diff)


def test_command_palette(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """ctrl+p with a query typed: the hits ranked, the query's letters highlighted."""
    async def search(pilot: Pilot[None]) -> None:
        await settled(pilot)
        app = pilot.app
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
        app.screen.query_one(CommandInput).cursor_blink = False  # else the cursor is on or off by the clock
        # hits of equal score from different providers come in either order: this query matches one provider
        await pilot.press(*"snapshot make")
        options = app.screen.query_one(CommandList)
        await until(pilot, lambda: options.option_count >= 2, what="the hits")
        await pilot.pause(0.5)  # the palette gathers hits from every provider before it settles

    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=search)
