"""A stranger's first minutes (issue #12 §7), on the real app over the frozen backend (nothing here needs a live
engine): `?` scrolls with j/k and lists every verb of the verb table and the `!cmd` rule; `z` maximises the
focused pane and z or esc restores it; at 80x24 (and 50x14) the footer keeps the keys that matter."""

from __future__ import annotations

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.screens.help import HelpScreen
from contree_tui.tui.screens.snapshot_detail import SnapshotDetailScreen
from contree_tui.tui.verbs import USAGE
from contree_tui.tui.widgets.key_footer import KeyFooter
from contree_tui.tui.widgets.log_view import LogView
from tests.tui.frozen import WORKING, FrozenBackend, frozen_clock
from tests.tui.helpers import until


def frozen_app() -> ContreeApp:
    return ContreeApp(FrozenBackend(), working=WORKING, clock=frozen_clock)


async def ready(pilot: Pilot[None]) -> ContreeApp:
    app = pilot.app
    assert isinstance(app, ContreeApp)
    await until(pilot, lambda: app.main.tree.node_for(WORKING) is not None, what="the tree")
    return app


def plain(renderable: object, width: int = 200) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


async def test_j_and_k_scroll_the_help_and_g_G_jump() -> None:
    app = frozen_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        scroller = help_screen.scroller
        await until(pilot, lambda: scroller.max_scroll_y > 0, what="the help to be taller than the screen")
        assert scroller.scroll_y == 0
        await pilot.press("j", "j", "j")
        await until(pilot, lambda: scroller.scroll_y == 3, what="j to scroll down a line each")
        await pilot.press("k")
        await until(pilot, lambda: scroller.scroll_y == 2, what="k to scroll up")
        await pilot.press("G")
        await until(pilot, lambda: scroller.scroll_y == scroller.max_scroll_y, what="G to the bottom")
        await pilot.press("g")
        await until(pilot, lambda: scroller.scroll_y == 0, what="g to the top")
        await pilot.press("pagedown")
        await until(pilot, lambda: scroller.scroll_y > 3, what="pagedown")
        assert "j/k" in str(scroller.border_subtitle), "the frame says how to scroll"
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), what="esc to close the help")


async def test_the_help_lists_every_verb_of_the_verb_table_and_the_shell_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    # a verb added to the table (as :diff is being) is listed without touching the help
    monkeypatch.setitem(USAGE, "zzdiff", ":zzdiff A [B]  compare two snapshots")
    app = frozen_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        text = plain(app.screen.query_one("#help-command-bar", Static).content)
        for name, usage in USAGE.items():
            does = usage.partition("  ")[2]
            assert any(line.split()[:1] == [name] and does.split()[0] in line for line in text.splitlines()), name
        assert "compare two snapshots" in text and "zzdiff A [B]" in text
        assert "!tag" in text and "forces the shell" in text
        keys = plain(app.screen.query_one("#help-keys", Static).content)
        assert "ctrl+p" in keys and "maximize" in keys, "the palette and z are in the help too"


async def test_z_maximises_the_focused_pane_and_z_or_esc_restores_it() -> None:
    app = frozen_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        screen = app.main
        screen.tree.focus()
        await pilot.press("z")
        await until(pilot, lambda: screen.maximized is screen.tree, what="the tree maximised")
        await pilot.pause()
        assert screen.tree.region.width == 80, "the whole width"
        assert not screen.table.region and not screen.log_panel.region, "the other panes are hidden"
        assert screen.query_one(KeyFooter).region, "the footer stays"
        await pilot.press("z")
        await until(pilot, lambda: screen.maximized is None, what="z to restore")
        await pilot.pause()
        assert screen.table.region and screen.log_panel.region

        screen.log_panel.view.focus()
        await pilot.press("z")
        await until(pilot, lambda: screen.maximized is screen.log_panel, what="the log panel (title and all)")
        await pilot.pause()
        assert screen.log_panel.region.width == 80 and not screen.tree.region
        await pilot.press("colon")  # the command bar stays on screen; leaving it comes back to the log
        await until(pilot, lambda: app.focused is screen.query_one("#command-bar"), what="the command bar")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.focused, LogView), what="the focus back in the maximised log")
        assert screen.maximized is screen.log_panel
        await pilot.press("escape")
        await until(pilot, lambda: screen.maximized is None, what="esc to restore")


def footer_keys(app: ContreeApp) -> list[FooterKey]:
    return list(app.main.query_one(KeyFooter).query(FooterKey))


@pytest.mark.parametrize(("size", "wanted"), [
    ((80, 24), ["⏎", ":", "u", "U", "q", "?", "^p"]),
    ((50, 14), [":", "u", "?", "^p"]),
])
async def test_the_footer_keeps_the_keys_that_matter_when_narrow(size: tuple[int, int], wanted: list[str]) -> None:
    app = frozen_app()
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        app.main.tree.focus()
        await until(pilot, lambda: any(key.key_display == "^p" for key in footer_keys(app)), what="the footer")
        await pilot.pause(0.1)
        keys = footer_keys(app)
        assert [key.key_display for key in keys] == wanted
        for key in keys:
            assert key.region.right <= size[0], f"{key.key_display} {key.description} is cut at the edge"
        assert len({key.region.x for key in keys}) == len(keys), "none overlap"


async def test_the_snapshot_detail_footer_keeps_help_and_back_at_80x24() -> None:
    app = frozen_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.main.tree.focus()
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, SnapshotDetailScreen), what="the detail view")
        await until(pilot, lambda: any(key.key_display == "^p" for key in app.screen.query(FooterKey)),
                    what="its footer")
        await pilot.pause(0.1)
        keys = list(app.screen.query(FooterKey))
        shown = [key.key_display for key in keys]
        assert "?" in shown and "esc" in shown and "d" in shown, shown
        assert all(key.region.right <= 80 for key in keys), "none cut at the edge"


async def test_at_50x14_the_help_drops_the_ids_column_so_what_keys_do_shows() -> None:
    app = frozen_app()
    async with app.run_test(size=(50, 14)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        keys = plain(app.screen.query_one("#help-keys", Static).content, width=44)
        assert "Roll back" in keys and "rollback" not in keys, "the description, not the id (it took it all)"
