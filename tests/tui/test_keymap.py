"""The user's keymap: a TOML file remaps binding ids to keys (the help screen shows the keys in effect); a file
that cannot be used is an error toast and the default keys stay; ids no binding has are a warning naming them."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.binding import Binding

from contree_tui.cli.parser import build_parser
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.keymap import KeymapError, default_keymap_path, parse_keymap, read_keymap
from contree_tui.tui.screens.help import HelpScreen
from contree_tui.tui.screens.main import MainScreen
from tests.tui.helpers import loaded, run_in_bar, until

SIZE = (140, 40)


def keymap_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keymap.toml"
    path.write_text(text)
    return path


def toasts(app: ContreeApp, title: str) -> list[str]:
    return [n.message for n in app._notifications if title in (n.title or "")]


def test_a_keymap_file_maps_ids_to_keys(tmp_path: Path) -> None:
    keymap = parse_keymap('[keys]\nrollback = "b"\nforward = ["B", "ctrl+y"]\ntree.down = "j, down,ctrl+n"\n'
                          '"log.follow" = "F"\n', tmp_path / "k.toml")
    assert dict(keymap.keys) == {"rollback": "b", "forward": "B,ctrl+y", "tree.down": "j,down,ctrl+n",
                                 "log.follow": "F"}, "bare dotted ids come back joined"
    assert keymap.unknown(["rollback", "forward", "tree.down"]) == ["log.follow"]


@pytest.mark.parametrize(("text", "reason"), [
    ("[keys\nrollback = 'b'", "not valid TOML"),
    ("rollback = 'b'", "[keys] table"),
    ("keys = 'b'", "keys must be a table"),
    ("[keys]\nrollback = 3", "must be a string"),
    ("[keys]\nrollback = ''", "not a comma-separated list"),
    ("[keys]\nrollback = 'b,,c'", "not a comma-separated list"),
])
def test_a_malformed_keymap_is_rejected_with_its_reason(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(KeymapError, match=reason.replace("[", r"\[")) as caught:
        read_keymap(keymap_file(tmp_path, text))
    assert str(tmp_path) in str(caught.value), "the message names the file"


def test_the_default_keymap_is_optional_a_named_one_is_not(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert default_keymap_path() == tmp_path / "config" / "contree-tui" / "keymap.toml"
    assert dict(read_keymap().keys) == {}
    with pytest.raises(KeymapError, match="does not exist"):
        read_keymap(tmp_path / "missing.toml")
    default_keymap_path().parent.mkdir(parents=True)
    default_keymap_path().write_text("[keys]\nquit = 'Q'\n")
    assert dict(read_keymap().keys) == {"quit": "Q"}
    assert build_parser().parse_args(["--keymap", "k.toml"]).keymap == "k.toml"


async def test_rollback_remapped_to_b_rolls_back_on_b_and_not_on_u(tui_engine_dir: Path, tmp_path: Path) -> None:
    path = keymap_file(tmp_path, '[keys]\nrollback = "b"\n')
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path, keymap_file=path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        parent = screen.position.working
        await run_in_bar(pilot, "touch /remapped")
        await until(pilot, lambda: screen.position.working != parent, what="the run's snapshot")
        child = screen.position.working
        await until(pilot, lambda: app.focused is screen.tree, what="focus back on the tree")

        await pilot.press("u")
        await pilot.pause(0.3)
        assert isinstance(app.screen, MainScreen), "u no longer rolls back"
        assert screen.position.working == child

        await pilot.press("b")
        await until(pilot, lambda: screen.position.working == parent, what="the rollback")

        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help screen")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        keys = {b.id: b.key for _, bindings in help_screen.sections for b in bindings if isinstance(b, Binding)}
        assert keys["rollback"] == "b" and keys["forward"] == "U", "help shows the keys in effect"
        assert not toasts(app, "keymap"), "a good keymap says nothing"


async def test_a_malformed_keymap_is_an_error_toast_and_the_defaults_stay(tui_engine_dir: Path,
                                                                        tmp_path: Path) -> None:
    path = keymap_file(tmp_path, '[keys]\nrollback = "b"\nforward = \n')
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path, keymap_file=path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        [message] = toasts(app, "keymap not loaded")
        assert str(path) in message and "not valid TOML" in message and "default keys" in message
        assert next(n for n in app._notifications if "keymap" in (n.title or "")).severity == "error"
        parent = screen.position.working
        await run_in_bar(pilot, "touch /defaults")
        await until(pilot, lambda: screen.position.working != parent, what="the run's snapshot")
        await until(pilot, lambda: app.focused is screen.tree, what="focus back on the tree")
        child = screen.position.working
        await pilot.press("u")
        await until(pilot, lambda: screen.position.working == parent and child != parent, what="u still rolls back")


async def test_unknown_binding_ids_are_named_in_a_warning_and_the_rest_apply(tui_engine_dir: Path,
                                                                            tmp_path: Path) -> None:
    path = keymap_file(tmp_path, '[keys]\nrolback = "b"\nhelp = "h,f1"\ntree.dwn = "n"\n')
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path, keymap_file=path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await loaded(pilot)
        [message] = toasts(app, "keymap")
        assert "rolback" in message and "tree.dwn" in message and "help" not in message.split("(")[0]
        assert next(n for n in app._notifications if n.title == "keymap").severity == "warning"
        app.main.query_one("#operations").focus()  # the tree's own h collapses; the table has no h
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help on h")
