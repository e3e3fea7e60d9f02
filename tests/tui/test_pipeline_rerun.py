"""`r` in the pipeline view while the pipeline is still running, on the real app and a real engine (busybox
shell steps): a finished branch of a running Parallel starts again at once and its parent waits for it; a step
whose result already went on down a Serial is re-run when the run ends; a running step is refused, said so."""

from __future__ import annotations

import time
from pathlib import Path

from contree_tui.pipeline import Exec, Parallel, Serial
from contree_tui.pipeline.executor import State
from tests.tui.helpers import toasts, until
from tests.tui.test_pipeline_view import SIZE, app_for, ended, label, marker, view_of

FAILS_FOR = 8  # s after the tree is built: the branch fails until then (its first run), succeeds after (its re-run)


async def test_r_on_a_failed_branch_while_another_runs_starts_it_again_and_the_parent_waits_for_it(
        tui_engine_dir: Path, tmp_path: Path) -> None:
    tag = marker()
    until_s = int(time.time()) + FAILS_FOR
    root = Parallel()
    root["slow"] = Exec(f"echo {tag} slow; while [ $(date +%s) -lt {until_s + 8} ]; do sleep 0.5; done")
    root["flaky"] = Exec(f"echo {tag} flaky; if [ $(date +%s) -lt {until_s} ]; then echo early >&2; exit 3; fi")
    app = app_for(root, tui_engine_dir, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        view = view_of(pilot)
        await until(pilot, lambda: view.run is not None and view.run.runs["/flaky"].state is State.ERROR
                    and view.run.runs["/slow"].state is State.RUNNING, timeout=60, what="flaky failed, slow running")
        run = view.run
        assert run is not None
        first = run.runs["/flaky"].operation
        assert "E:1" in str(view.query_one("#pipeline-title").render())
        view.tree.select_path("/flaky")
        while time.time() < until_s + 0.5:  # the user fixes what made it fail (here: the clock does)
            await pilot.pause(0.1)

        await pilot.press("r")
        assert any("/flaky runs again now" in t for t in toasts(app)), toasts(app)
        assert run.runs["/flaky"].state is not State.ERROR and not label(view, "/flaky").startswith("✗")
        assert run.counts()[State.ERROR] == 0, "the counts move at once"
        await until(pilot, lambda: run.runs["/flaky"].state is State.DONE, timeout=60, what="the re-run to succeed")
        assert run.runs["/flaky"].operation != first, "a new operation"
        await until(pilot, lambda: view.log_box.view.text_lines()[-1].startswith("── ✓ done"), what="its log's end")
        lines = view.log_box.view.text_lines()
        assert lines.count(f"{tag} flaky") == 1 and "early" not in lines, f"the log started over: {lines}"
        assert not run.runs["/"].state.finished, "slow still runs: the root waits"

        await until(pilot, lambda: ended(view), timeout=60, what="the run to end")
        assert view.run is run and view.runs_started == 1, "the same run, not a second one"
        assert run.runs["/"].state is State.DONE, "the parent took the re-run's result"
        assert label(view, "/") == "✓ /  D:2", label(view, "/")


async def test_r_mid_run_on_a_running_step_is_refused_and_on_a_serial_step_is_queued(tui_engine_dir: Path,
                                                                                     tmp_path: Path) -> None:
    tag = marker()
    root = Serial({"one": Exec(f"echo {tag} one > /one"), "two": Exec(f"cat /one; echo {tag} two; sleep 4")})
    app = app_for(root, tui_engine_dir, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        view = view_of(pilot)
        await until(pilot, lambda: view.run is not None and view.run.runs["/two"].state is State.RUNNING,
                    timeout=60, what="two to run")
        first = view.run.runs["/one"].result  # type: ignore[union-attr]

        view.tree.select_path("/two")
        await pilot.press("r")
        assert toasts(app)[-1] == "re-run: /two is still running: r once it has ended"

        view.tree.select_path("/one")
        await pilot.press("r")
        assert toasts(app)[-1] == "re-run: /one: its result already went on to /two: re-run queued for when the " \
                                  "pipeline ends"
        assert "R:1 D:1 · then re-run /one · pipeline" in str(view.query_one("#pipeline-title").render())
        await until(pilot, lambda: ended(view, runs=2), timeout=90, what="the queued re-run to run and end")
        runs = view.run.runs  # type: ignore[union-attr]
        assert runs["/"].state is State.DONE
        assert not runs["/one"].cached and runs["/one"].result != first, "one ran again"
        assert not runs["/two"].cached, "two, on one's new result, too"


async def test_r_on_a_skipped_step_says_to_unskip_it(tui_engine_dir: Path, tmp_path: Path) -> None:
    root = Serial({"on": Exec(f"echo {marker()}"), "off": Exec("echo never")})
    root["off"].set(skip=True)
    app = app_for(root, tui_engine_dir, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        view = view_of(pilot)
        await until(pilot, lambda: ended(view), timeout=60, what="the run to end")
        assert "pipeline done: P:1 D:1 (1 skipped)" in toasts(app), toasts(app)
        view.tree.select_path("/off")
        await pilot.press("r")
        assert toasts(app)[-1] == "re-run: /off is skipped: s unskips it"
        assert view.runs_started == 1, "no run that would pass it over again"
