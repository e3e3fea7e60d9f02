"""The pipeline view read as a stranger reads it at 80x24, on the real app and a real engine: the header keeps
FILE:FUNC, the footer the view's keys, a running step counts its seconds, a parent's log lists its steps, a step
that changed nothing says so, and node text with brackets is shown as written (not eaten as markup)."""

from __future__ import annotations

import re
from pathlib import Path

from textual.widgets._footer import FooterKey

from contree_tui.pipeline import Exec, Parallel, Serial
from contree_tui.pipeline.executor import State
from contree_tui.tui.screens.help import HelpScreen
from tests.tui.helpers import toasts, until
from tests.tui.test_pipeline_view import app_for, ended, label, marker, view_of

SMALL = (80, 24)


async def test_the_view_at_80x24_says_what_runs_where_and_which_keys_work(tui_engine_dir: Path,
                                                                          tmp_path: Path) -> None:
    tag = marker()
    root = Serial()
    root["check [etc]"] = Exec(f"[ -d /etc ] && echo {tag} etc > /etc/{tag}")
    root["par"] = Parallel({"slow": Exec(f"echo {tag} slow; sleep 4"), "same": Exec(f"echo {tag} same")})
    root["last"] = Exec(f"echo {tag} last")
    app = app_for(root, tui_engine_dir, tmp_path)
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        view = view_of(pilot)
        await until(pilot, lambda: view.run is not None and view.run.runs["/par/slow"].state is State.RUNNING,
                    timeout=60, what="slow to run")
        title = str(view.query_one("#pipeline-title").render())
        assert "pipeline test.py:pipe" in title and ":0" not in title, title

        shown = {k.key_display or k.key: k.description for k in view.query(FooterKey) if k.region.right <= SMALL[0]}
        assert {"⏎", "r", "e", "esc", "?", "q"} <= set(shown), f"keys on screen: {shown}"

        await until(pilot, lambda: re.fullmatch(r"⟳ slow  running \d+\.\ds", label(view, "/par/slow")),
                    what="slow's time so far in its row")
        seen = label(view, "/par/slow")
        await until(pilot, lambda: label(view, "/par/slow") != seen, timeout=5, what="the time to count on")

        view.tree.select_path("/par")
        await until(pilot, lambda: any(line.startswith("⟳ slow  running") for line in view.log_box.view.text_lines()),
                    what="the parent's log to list its steps")
        assert view.log_box.view.text_lines()[0] == "── parallel, 2 steps (j/k: a step's log)"

        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        assert app.screen.sections[0][0] == "pipeline (P)", "the view's own keys first"  # type: ignore[attr-defined]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is view, what="the help to close")

        view.tree.select_path("/last")
        await until(pilot, lambda: view.log_box.view.text_lines() == [
            "── ○ not started yet: its output shows here as it runs"], what="a word for a step not started")
        await pilot.press("s")
        assert toasts(app)[-1] == "skip: /last skipped", "not started: nothing 'left to end'"
        await pilot.press("s")

        view.tree.select_path("/check [etc]")
        await pilot.pause()
        node = str(view.query_one("#pipeline-node").render())
        assert node.startswith("/check [etc]  [exec]") and f"[ -d /etc ] && echo {tag}" in node, node

        await until(pilot, lambda: ended(view), timeout=60, what="the run to end")
        assert label(view, "/par/same").endswith(" no change"), label(view, "/par/same")
        assert re.search(r"→ [0-9a-f]{8}$", label(view, "/check [etc]")), "a step that wrote a file: its checkpoint"

        await pilot.press("colon")
        await until(pilot, lambda: app.screen is app.main and app.focused is app.main.query_one("#command-bar"),
                    what=": to reach the command bar from the view")


async def test_at_80x24_the_main_screens_footer_keeps_P_to_go_back_to_the_pipeline(tui_engine_dir: Path,
                                                                                  tmp_path: Path) -> None:
    app = app_for(Serial({"x": Exec(f"echo {marker()}")}), tui_engine_dir, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        view = view_of(pilot)
        await until(pilot, lambda: ended(view), timeout=60, what="the run to end")
        await pilot.press("escape")  # left the view: the main screen, its tree focused
        await until(pilot, lambda: app.screen is app.main, what="the main screen")
        await until(pilot, lambda: any(k.key_display == "^p" for k in app.main.query(FooterKey)), what="its footer")
        await pilot.pause(0.1)
        shown = {k.key_display or k.key: k.description for k in app.main.query(FooterKey)
                 if k.region.right <= SMALL[0]}
        assert shown.get("P") == "Pipeline", f"keys on screen: {shown}"
        assert {"?", ":", "q"} <= set(shown), shown
        await pilot.press("P")
        await until(pilot, lambda: app.screen is view, what="P back to the view")
