"""ctrl+p: against a real engine, the palette jumps to a tag, to an operation, and runs an action by its name; over
the frozen backend, a newcomer's words (sync, diff, rollback, tag, every verb) find what they mean and Textual's
internal commands (cursor_left, scroll_up, its Quit/Keys/Maximize) are not offered."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.data import ContreeBackend
from contree_tui.tui.screens.main import MainScreen
from contree_tui.tui.screens.snapshot_detail import SnapshotDetailScreen
from contree_tui.tui.verbs import USAGE
from contree_tui.tui.widgets.command_bar import CommandBar
from tests.tui.frozen import WORKING, FrozenBackend, frozen_clock
from tests.tui.helpers import loaded, run_in_bar, until

SIZE = (140, 40)


async def palette(pilot: Pilot[None], query: str, expect: str) -> None:
    """Open the palette, type `query`, wait for `expect` to be the first hit, take it."""
    app = pilot.app
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
    await pilot.press(*query)
    options = app.screen.query_one(CommandList)

    def first() -> str:
        return str(options.get_option_at_index(0).prompt) if options.option_count else ""

    await until(pilot, lambda: expect in first(), what=f"{expect!r} first among the hits")
    await pilot.press("enter")
    await until(pilot, lambda: not isinstance(app.screen, CommandPalette), what="the palette to close")


async def test_ctrl_p_goes_to_a_tag_an_operation_and_runs_an_action(tui_engine_dir: Path, tmp_path: Path) -> None:
    marker = uuidlib.uuid4().hex[:8]
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        base = screen.position.working
        before = base
        await run_in_bar(pilot, f"touch /palette-{marker}")
        await until(pilot, lambda: screen.position.working != before, what="the run's snapshot")
        made = screen.position.working
        assert made is not None
        backend = screen.backend
        assert isinstance(backend, ContreeBackend)
        await backend.client.update_image_tag(made, f"pal-{marker}")
        screen.tree.focus()
        await pilot.press("R")  # reload: the tag shows
        await until(pilot, lambda: f"pal-{marker}" in screen.tree.tags(), what="the tag in the tree")
        await pilot.press("g")
        await until(pilot, lambda: screen.tree.cursor_uuid != made, what="the cursor away from it")

        await palette(pilot, f"tag pal-{marker}", f"pal-{marker}")
        await until(pilot, lambda: screen.tree.cursor_uuid == made, what="the cursor on the tagged snapshot")
        assert app.focused is screen.tree

        op = next(op for op in screen.table.operations.values() if op.result == made)
        screen.table.move_cursor(row=0)
        await palette(pilot, f"operation {op.uuid[:8]}", op.uuid[:8])
        await until(pilot, lambda: screen.table.selected_uuid == op.uuid, what="the operation's row")
        assert app.focused is screen.table

        await palette(pilot, "roll back", "Roll back")  # an action by its name: as if u was pressed
        await until(pilot, lambda: screen.position.working == screen.lineage.parent_of(made), what="the rollback")
        assert isinstance(app.screen, MainScreen)


# A stranger's words (issue #12 §7), on the real app over the frozen backend ------------------------------------

def frozen_app() -> ContreeApp:
    return ContreeApp(FrozenBackend(), working=WORKING, clock=frozen_clock)


async def hits(pilot: Pilot[None], query: str, anchor: str | None = None) -> list[str]:
    """The palette's hits for `query` (their first lines, without the help), once `anchor` is among them (None: once the
    palette says it found nothing); the palette is closed again."""
    app = pilot.app
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
    await pilot.press(*query)
    options = app.screen.query_one(CommandList)

    def shown() -> list[str]:
        return [str(options.get_option_at_index(i).prompt).split("\n")[0] for i in range(options.option_count)]

    if anchor is None:
        await until(pilot, lambda: any("No matches found" in hit for hit in shown()), what=f"no hit for {query!r}")
    else:
        await until(pilot, lambda: any(anchor in hit for hit in shown()), what=f"{anchor!r} among the hits")
    await pilot.pause(0.3)  # the providers answer one after the other: let the slower ones in
    found = shown()
    await pilot.press("escape")
    await until(pilot, lambda: not isinstance(app.screen, CommandPalette), what="the palette to close")
    return found


async def frozen_ready(pilot: Pilot[None]) -> MainScreen:
    app = pilot.app
    assert isinstance(app, ContreeApp)
    await until(pilot, lambda: app.main.tree.node_for(WORKING) is not None, what="the tree")
    return app.main


async def test_the_palette_offers_every_verb_of_the_verb_table_first_by_its_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(USAGE, "zzdiff", ":zzdiff A [B]  compare two snapshots")  # a verb added later: listed too
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await frozen_ready(pilot)
        for name, usage in USAGE.items():
            found = await hits(pilot, name, usage.split("  ")[0])
            assert found[0].startswith(usage.split("  ")[0] + "  "), f"{name}: {found[:3]}"
        await palette(pilot, "tag", ":tag NAME")  # choosing a verb: the command bar holds it, focused
        bar = screen.query_one(CommandBar)
        assert app.focused is bar and bar.value == ":tag "


NEWCOMER_WORDS = [
    ("sync", ":sync on|off"),
    ("diff", "Diff the snapshot under the cursor against its parent"),
    ("rollback", "Roll back"),
    ("roll back", "Roll back"),
    ("undo", "Roll back"),
    ("tag", ":tag NAME"),
    ("help", "Help"),
    ("keys", "Help"),
    ("zoom", "Maximise the focused pane"),
    ("theme", "Theme"),
]


async def test_a_newcomers_words_find_what_they_mean() -> None:
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        await frozen_ready(pilot)
        listed = await hits(pilot, "", "Theme")  # nothing typed: the screen's keys first, then the verbs
        assert listed[0] == "Command" and listed.index("Roll back") < listed.index(USAGE["tag"]) < listed.index("Theme")
        assert all(usage in listed for usage in USAGE.values())
        for query, first in NEWCOMER_WORDS:
            found = await hits(pilot, query, first)
            assert any(hit.startswith(first) for hit in found[:2]), (query, found[:4])


async def test_the_palette_hides_textuals_internal_commands() -> None:
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await frozen_ready(pilot)
        screen.query_one(CommandBar).focus()  # an Input focused: its cursor_left & co. were offered too
        assert await hits(pilot, "cursor", "Diff the snapshot under the cursor") == [
            "Diff the snapshot under the cursor against its parent"]
        for query in ("scroll", "focus_", "delete_right", "paste"):
            found = await hits(pilot, query)
            assert len(found) == 1 and "No matches found" in found[0], (query, found)
        assert await hits(pilot, "quit", "Quit") == ["Quit"], "once: q, not Textual's Quit beside it"
        found = await hits(pilot, "maxim", "Maximise the focused pane")
        assert len(found) == 1, "z's, not Textual's Maximize (the log view without its panel)"
        assert not [hit for hit in await hits(pilot, "ke", "Help") if hit.startswith("Keys")]


async def test_the_palettes_diff_opens_the_diff_of_the_snapshot_under_the_cursor() -> None:
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await frozen_ready(pilot)
        screen.tree.focus()
        await until(pilot, lambda: screen.tree.cursor_uuid is not None, what="the tree's cursor")
        under = screen.tree.cursor_uuid
        await palette(pilot, "diff under", "Diff the snapshot")  # "diff" alone: the :diff verb comes first
        await until(pilot, lambda: isinstance(app.screen, SnapshotDetailScreen) and app.screen.mode == "diff",
                    what="the detail view on its diff")
        detail = app.screen
        assert isinstance(detail, SnapshotDetailScreen) and detail.snapshot.uuid == under
