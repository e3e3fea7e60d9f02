"""The snapshot tree's keys, on frozen data (the layout is known line by line):

    ◆ busybox:latest
    ● a0000001
    ├─● a0000002
    │ ├─● a0000003
    │ ◉ a0000005    (working)
    ● a0000004
    ● a0000008
"""

from __future__ import annotations

from contree_tui.client.reconnect import ConnectionState
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.screens.main import MainScreen
from tests.tui.frozen import BASE, WORKING, FrozenBackend, frozen_clock, uid
from tests.tui.helpers import until

SIZE = (130, 34)


async def ready(pilot) -> MainScreen:  # type: ignore[no-untyped-def]
    screen = pilot.app.main
    await until(pilot, lambda: screen.query("#tree") and screen.tree.node_for(WORKING) is not None, what="tree")
    await until(pilot, lambda: screen.tree.cursor_uuid == WORKING, what="the cursor on the working snapshot")
    return screen


async def test_vim_keys_move_h_collapses_and_l_opens_again() -> None:
    app = ContreeApp(FrozenBackend(), working=WORKING, clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        tree = screen.tree
        await pilot.press("j")
        assert tree.cursor_uuid == uid(4)
        await pilot.press("l")  # it shows a child: down to it
        assert tree.cursor_uuid == uid(8)
        await pilot.press("h")  # a leaf: up to its parent
        assert tree.cursor_uuid == uid(4)
        await pilot.press("h")  # it shows a child: collapses
        await pilot.pause()
        assert tree.node_for(uid(8)) is None and tree.cursor_uuid == uid(4)
        assert "+1 " in tree.render_label(tree.node_for(uid(4)), *styles()).plain, "says what it hides"  # type: ignore[arg-type]
        await pilot.press("l")  # collapsed: opens
        await pilot.pause()
        assert tree.node_for(uid(8)) is not None and tree.cursor_uuid == uid(4)
        await pilot.press("k", "k")
        assert tree.cursor_uuid == uid(3)
        await pilot.press("g")
        assert tree.cursor_uuid == BASE
        await pilot.press("enter")
        await until(pilot, lambda: screen.position.working == BASE, what="enter on the base image")
        assert screen.status_bar.working == f"busybox:latest ({BASE[:8]})"
        await pilot.press("u")  # the base image has no parent: a warning, no dialog
        await pilot.pause()
        assert isinstance(app.screen, MainScreen) and screen.position.working == BASE


def styles():  # type: ignore[no-untyped-def]
    from rich.style import Style

    return Style(), Style()


async def test_the_status_bar_says_reconnecting_and_counts_running_operations() -> None:
    backend = FrozenBackend()
    app = ContreeApp(backend, working=WORKING, clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        text = str(screen.status_bar.render())
        assert "embedded" in text and "running 1" in text and f"working {WORKING[:8]}" in text, text
        backend.status.set(ConnectionState.reconnecting(2, 0.5, "cannot connect"))
        await until(pilot, lambda: "reconnecting…" in str(screen.status_bar.render()), what="reconnecting")
        backend.status.set(ConnectionState.connected())
        await until(pilot, lambda: "reconnecting" not in str(screen.status_bar.render()), what="connected")
