"""The tree's `/` filter (by command, uuid prefix, tag; the ancestors of a match stay) and `'`, the jump to a
tag with completion, against a real engine: two sibling snapshots on busybox, one filtered away and back."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

from textual.pilot import Pilot

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.screens.main import MainScreen
from contree_tui.tui.screens.prompt import PromptScreen
from tests.tui.helpers import loaded, run_and_wait, until

SIZE = (140, 40)



async def filter_tree(pilot: Pilot[None], text: str) -> None:
    app = pilot.app
    await pilot.press("slash")
    await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="the filter prompt")
    await pilot.press("ctrl+u", *text, "enter") if text else await pilot.press("ctrl+u", "enter")
    await until(pilot, lambda: isinstance(app.screen, MainScreen), what="the prompt to close")


async def test_slash_filters_the_tree_keeping_ancestors_and_restores_it(tui_engine_dir: Path, tmp_path: Path) -> None:
    marker = uuidlib.uuid4().hex[:10]
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        tree = screen.tree
        base = screen.position.working
        assert base is not None
        apple = await run_and_wait(pilot, screen, f"echo apple-{marker} > /fruit")
        await pilot.press("u")
        await until(pilot, lambda: screen.position.working == base, what="the rollback")
        banana = await run_and_wait(pilot, screen, f"echo banana-{marker} > /fruit")
        assert tree.node_for(apple) is not None and tree.node_for(banana) is not None
        tree.focus()

        await filter_tree(pilot, f"banana-{marker}")
        await until(pilot, lambda: tree.node_for(apple) is None, what="the other branch hidden")
        assert tree.node_for(banana) is not None, "the match is shown"
        assert tree.node_for(base) is not None, "its ancestor stays, so the match has a place"
        assert "(1 match)" in str(tree.border_title)
        await until(pilot, lambda: tree.cursor_uuid == banana, what="the cursor on the match")

        await filter_tree(pilot, apple[:10])  # a uuid prefix
        await until(pilot, lambda: tree.node_for(banana) is None and tree.node_for(apple) is not None,
                    what="the uuid filter")

        await filter_tree(pilot, "")  # empty: everything again
        await until(pilot, lambda: tree.node_for(apple) is not None and tree.node_for(banana) is not None,
                    what="the tree restored")
        assert str(tree.border_title) == "snapshots"

        # ' jumps to a tag; tab completes it
        await pilot.press("apostrophe")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="the tag prompt")
        await pilot.press(*"busybox:la", "tab")
        prompt = app.screen
        assert isinstance(prompt, PromptScreen) and prompt.input.value == "busybox:latest"
        await pilot.press("enter")
        await until(pilot, lambda: tree.cursor_uuid == base, what="the cursor on the tagged snapshot")

        # a filter that hides the working snapshot's branch, then a jump to it: the filter gives way
        await filter_tree(pilot, f"apple-{marker}")
        await until(pilot, lambda: tree.node_for(banana) is None, what="banana hidden")
        assert tree.jump_to(banana)
        await until(pilot, lambda: tree.cursor_uuid == banana, what="the jump")
        assert tree.filter_text == ""

        await pilot.press("apostrophe")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="the tag prompt")
        await pilot.press(*"no-such-tag", "enter")
        await until(pilot, lambda: any("no snapshot is tagged" in n.message for n in app._notifications),
                    what="a toast for an unknown tag")
