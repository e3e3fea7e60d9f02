"""The command bar decides at the first keystroke whether a line is a verb or a shell command, says which
in the status bar as the user types, offers the verb a "not found" command was a typo of, and cycles
through completions on repeated tab. Against a real engine."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import Stream
from tests.tui.helpers import loaded, until
from tests.tui.test_command_bar import SIZE, app_in, bar, ops_of, submit, toasts


async def test_tag_typed_after_the_colon_is_the_verb_and_bang_runs_a_program_named_tag(tui_engine_dir: Path,
                                                                                       tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        name = f"v1-{uuidlib.uuid4().hex[:6]}"
        await pilot.press("colon", *f"tag {name}")
        assert screen.status_bar.prompt.startswith("verb: tag"), screen.status_bar.prompt
        await pilot.press("enter")
        await until(pilot, lambda: name in screen.lineage.tags(), what="`tag v1` to tag the working snapshot")
        assert screen.status_bar.prompt == "", "leaving the bar gives the status bar back"
        assert not ops_of(screen, f"tag {name}"), "no shell run for a verb"

        await pilot.press("colon", *"!tag")
        assert screen.status_bar.prompt.startswith("shell: a program named tag"), screen.status_bar.prompt
        await pilot.press("enter")
        await until(pilot, lambda: any(op.exit_code == 127 for op in ops_of(screen, "tag")),
                    what="`!tag` to run the shell (which finds no program tag)")
        stderr = [t for op in ops_of(screen, "tag") for s, t in screen.buffers[op.uuid] if s is Stream.STDERR]
        assert any("tag: not found" in line for line in stderr), stderr

        await submit(pilot, f":untag {name}")  # the colon spelling stays a verb
        await until(pilot, lambda: name not in screen.lineage.tags(), what="`:untag` to untag")


async def test_a_near_miss_that_the_shell_does_not_find_offers_the_verb(tui_engine_dir: Path,
                                                                       tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("colon", *"tga v2")
        assert screen.status_bar.prompt.startswith("shell:"), "a word that is not a verb is the shell's"
        await pilot.press("enter")
        await until(pilot, lambda: any("did you mean :tag?" in t for t in toasts(app)), what="the near miss")
        assert any("'tag v2' runs the verb" in t for t in toasts(app))

        await submit(pilot, "qqzz")  # not found either, but close to no verb
        await submit(pilot, "sh -c 'exit 127'")  # 127 from a program that exists
        await until(pilot, lambda: all(not op.running for c in ("qqzz", "sh -c 'exit 127'")
                                       for op in ops_of(screen, c)) and len(ops_of(screen, "qqzz")) == 1
                    and len(ops_of(screen, "sh -c 'exit 127'")) == 1, what="both runs to end")
        await pilot.pause(0.3)
        assert sum("did you mean" in t for t in toasts(app)) == 1, toasts(app)
        assert any("qqzz exited 127; no new snapshot" in t for t in toasts(app)), "the exit, not `changed no file`"


async def test_repeated_tab_cycles_through_the_candidates(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = app_in(tmp_path / "p", tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        the_bar = bar(app)
        await pilot.press("colon", "d", "tab")
        assert the_bar.value == "diff "
        assert screen.status_bar.prompt.startswith("tab 1/3: diff disposable download")
        await pilot.press("tab")
        assert the_bar.value == "disposable "
        await pilot.press("tab")
        assert the_bar.value == "download "
        await pilot.press("tab")
        assert the_bar.value == "diff ", "round again"
        await pilot.press("tab")
        assert the_bar.value == "disposable "
        await pilot.press("o", "tab")
        assert the_bar.value == "disposable off", "typing ends the cycle: tab completes the argument"
        await pilot.press("tab")
        assert the_bar.value == "disposable on"
        await pilot.press("escape")

        await pilot.press("colon", *":un", "tab")
        assert the_bar.value == ":untag ", "the colon spelling completes too"
        await pilot.press("escape")

        await pilot.press("colon", *"ls /bin/ch")  # chgrp chmod chown chroot … in busybox
        seen = []
        for _ in range(3):
            await pilot.press("tab")
            await until(pilot, lambda: the_bar.value not in seen, what="the next path")
            seen.append(the_bar.value)
        assert all(line.startswith("ls /bin/ch") for line in seen) and seen == sorted(seen), seen
        assert isinstance(app, ContreeApp)
