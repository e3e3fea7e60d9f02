"""ctrl+p against a real engine: the palette jumps to a tag, to an operation, and runs an action by its name."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.data import ContreeBackend
from contree_tui.tui.screens.main import MainScreen
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
