"""Keys that arrive in one burst with `:` (a script, `tmux send-keys`, xdotool, a paste without bracketed paste)
go into the command bar in order, as if typed there, against a real engine: none of them fires a binding of
the tree or the screen on the way."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

from textual import events
from textual.keys import _character_to_key

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.widgets.command_bar import CommandBar
from tests.tui.helpers import loaded, toasts, until

SIZE = (140, 40)


def burst(app: ContreeApp, keys: list[tuple[str, str | None]]) -> None:
    """Post every key to the app at once, as the terminal driver does with one read of several bytes
    (pilot.press waits for the app to settle after each key, which hides the bug)."""
    for key, character in keys:
        app.post_message(events.Key(key, character))


def typed(text: str) -> list[tuple[str, str | None]]:
    return [(_character_to_key(char), char) for char in text]


async def test_a_burst_with_colon_runs_the_whole_line_and_fires_no_binding(tui_engine_dir: Path,
                                                                           tmp_path: Path) -> None:
    (tmp_path / "here").mkdir()
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path / "here")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        tree_line = screen.tree.cursor_line
        # c: the screen's interrupt; j/k/G: the tree's cursor; backspace and enter in the burst edit and submit
        marker = uuidlib.uuid4().hex[:8]
        command = f"echo c-jGk {marker}"
        burst(app, [*typed(":" + command + "x"), ("backspace", None), ("enter", "\r")])
        await until(pilot, lambda: any(op.command == command and not op.running
                                       for op in screen.table.operations.values()),
                    what=f"{command!r} to run and end")
        assert not [t for t in toasts(app) if "interrupt" in t], toasts(app)
        assert screen.tree.cursor_line == tree_line, "no key of the burst moved the tree's cursor"
        assert app.main.query_one(CommandBar).value == ""
        await until(pilot, lambda: app.focused is screen.tree, what="focus back on the tree after the run")


async def test_a_burst_with_slash_fills_the_filter_prompt_and_quits_nothing(tui_engine_dir: Path,
                                                                          tmp_path: Path) -> None:
    """`/` opens a prompt on a screen of its own, whose input is focused only once mounted: the keys that
    come back before are held and typed into it in order (q: the app's quit, j: the tree's cursor)."""
    (tmp_path / "here").mkdir()
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path / "here")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        burst(app, [*typed("/qjcx"), ("backspace", None), ("enter", "\r")])
        await until(pilot, lambda: screen.tree.filter_text == "qjc" and app.screen is screen,
                    what="the filter 'qjc' to be set and the prompt closed")
        assert app.is_running, "q in the burst was typed, not the app's quit"
        assert not [t for t in toasts(app) if "interrupt" in t], toasts(app)
