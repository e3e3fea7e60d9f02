"""The pipeline view (`contree-tui pipeline FILE:FUNC`) driving the real app on a real engine: busybox shell
steps, the tree's labels read as the user sees them, keys pressed as the user presses them."""

from __future__ import annotations

import logging
import uuid as uuidlib
from pathlib import Path

import pytest
from rich.style import Style
from textual.pilot import Pilot

from contree_tui.pipeline import Exec, Parallel, Serial
from contree_tui.pipeline.executor import PipelineEvent, PipelineRun, State
from contree_tui.pipeline.launch import PipelineLaunch
from contree_tui.pipeline.nodes import Node
from contree_tui.pipeline.step_cache import StepCache
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.screens.main import MainScreen
from contree_tui.tui.screens.pipeline_view import PipelineScreen
from tests.tui.frozen import WORKING, FrozenBackend, frozen_clock
from tests.tui.helpers import loaded, toasts, until

SIZE = (140, 40)
BUSYBOX = "tag:busybox:latest"


def app_for(root: Node, engine: Path, folder: Path) -> ContreeApp:
    return ContreeApp(state_dir=engine, folder=folder, pipeline=PipelineLaunch(root, "test.py:pipe", image=BUSYBOX))


def view_of(pilot: Pilot[None]) -> PipelineScreen:
    screen = pilot.app.get_screen("pipeline")
    assert isinstance(screen, PipelineScreen)
    return screen


def label(view: PipelineScreen, path: str) -> str:
    node = view.tree.node_for(path)
    assert node is not None
    return view.tree.render_label(node, Style(), Style()).plain


def ended(view: PipelineScreen, runs: int = 1) -> bool:
    return view.runs_started == runs and view.run is not None and view.run.runs["/"].state.finished \
        and not view.running


def marker() -> str:
    return uuidlib.uuid4().hex[:8]  # every test its own commands: no cache hit from another test


async def test_a_parallel_of_4_shows_4_running_at_once_with_R_rolled_up_then_D(tui_engine_dir: Path,
                                                                                tmp_path: Path) -> None:
    tag = marker()
    root = Parallel()
    for i in range(4):
        root[f"branch{i}"] = Exec(f"echo {tag} branch{i}; sleep 4; echo {tag} end{i} | tee /b{i}")
    async with app_for(root, tui_engine_dir, tmp_path).run_test(size=SIZE) as pilot:
        view = view_of(pilot)
        assert pilot.app.screen is view, "the app opens on the pipeline"
        await until(pilot, lambda: view.run is not None and view.run.counts()[State.RUNNING] == 4, timeout=60,
                    what="the 4 branches running at once")
        assert label(view, "/").startswith("⟳ /") and "R:4" in label(view, "/"), label(view, "/")
        assert all(label(view, f"/branch{i}").startswith("⟳ branch") for i in range(4))
        assert "R:4" in str(view.query_one("#pipeline-title").render())

        # the selected node's log streams while it runs
        view.tree.select_path("/branch2")
        await until(pilot, lambda: f"{tag} branch2" in view.log_box.view.text_lines(), what="branch2's output")

        await until(pilot, lambda: ended(view), timeout=60, what="the run to end")
        assert label(view, "/") == "✓ /  D:4", label(view, "/")
        results = {view.run.runs[f"/branch{i}"].result for i in range(4)}  # type: ignore[union-attr]
        assert len(results) == 4, "4 sibling snapshots"
        await until(pilot, lambda: view.log_box.view.text_lines()[-1].startswith("── ✓ done"),
                    what="the outcome as the log's last line")
        assert f"{tag} end2" in view.log_box.view.text_lines()


async def test_a_failing_step_shows_E_and_e_jumps_to_it(tui_engine_dir: Path, tmp_path: Path) -> None:
    tag = marker()
    root = Serial(stop_on_error=False)
    root["ok"] = Exec(f"echo {tag} ok")
    root["checks"] = Parallel({"fine": Exec(f"echo {tag} fine"), "boom": Exec(f"echo {tag} boom >&2; exit 3")})
    root["after"] = Exec(f"echo {tag} after")
    app = app_for(root, tui_engine_dir, tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        view = view_of(pilot)
        await until(pilot, lambda: ended(view), timeout=60, what="the run to end")
        assert view.run is not None and view.run.runs["/"].state is State.ERROR
        assert label(view, "/") == "✗ /  D:3 E:1", label(view, "/")
        assert label(view, "/checks") == "✗ checks  D:1 E:1"
        assert label(view, "/checks/boom") == "✗ boom  exit 3"
        assert view.tree.cursor_path == "/"

        assert "pipeline failed: /checks/boom: exit 3 · e: next error" in toasts(app), "the toast says why"
        await pilot.press("e")
        assert view.tree.cursor_path == "/checks/boom", "e: the next failed step"
        await pilot.pause()
        assert str(view.query_one("#pipeline-node").render()).startswith("/checks/boom  [exec]  ✗ exit 3  echo")
        await until(pilot, lambda: view.log_box.view.text_lines()[-2:] == [f"{tag} boom", "── ✗ failed · exit 3"],
                    what="its log, its outcome last")
        await pilot.press("e")
        assert view.tree.cursor_path == "/checks/boom", "the only one: e wraps around to it"


async def test_r_reruns_only_that_node_and_the_others_are_cache_hits(tui_engine_dir: Path, tmp_path: Path) -> None:
    tag = marker()
    root = Parallel({name: Exec(f"echo {tag} {name} > /{name}") for name in ("a", "b", "c")})
    async with app_for(root, tui_engine_dir, tmp_path).run_test(size=SIZE) as pilot:
        view = view_of(pilot)
        await until(pilot, lambda: ended(view), timeout=60, what="the first run")
        first = {path: run.result for path, run in view.run.runs.items()}  # type: ignore[union-attr]

        view.tree.select_path("/b")
        await pilot.press("r")
        await until(pilot, lambda: ended(view, runs=2), timeout=60, what="the re-run")
        runs = view.run.runs  # type: ignore[union-attr]
        assert runs["/"].state is State.DONE
        assert not runs["/b"].cached and runs["/b"].result != first["/b"], "b ran again: a new snapshot"
        assert runs["/a"].cached and runs["/c"].cached, "a and c: cache hits"
        assert (runs["/a"].result, runs["/c"].result) == (first["/a"], first["/c"])
        assert label(view, "/a").startswith("✓ a  cached → ")
        assert view.log_box.view.text_lines()[-1].startswith("── ✓ done · ")  # b's log, of the new run


async def test_enter_makes_a_checkpoint_working_and_u_moves_from_there(tui_engine_dir: Path, tmp_path: Path) -> None:
    tag = marker()
    root = Serial({"one": Exec(f"echo {tag} > /one"), "two": Exec(f"echo {tag} > /two")})
    app = app_for(root, tui_engine_dir, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        view = view_of(pilot)
        await until(pilot, lambda: ended(view), timeout=60, what="the run to end")
        one = view.run.runs["/one"].result  # type: ignore[union-attr]
        source = view.run.runs["/one"].source  # type: ignore[union-attr]
        assert one and source and one != source

        view.tree.select_path("/one")
        await pilot.press("enter")
        main = await loaded(pilot)
        await until(pilot, lambda: isinstance(app.screen, MainScreen) and main.position.working == one,
                    what="/one's checkpoint to be working, on the main screen")
        assert main.tree.working == one and main.lineage.parent_of(one) == source

        await pilot.press("u")
        await until(pilot, lambda: main.position.working == source, what="u to roll back to /one's source")
        await pilot.press("U")
        await until(pilot, lambda: main.position.working == one, what="U to come back")

        await pilot.press("P")
        assert app.screen is view, "P: back to the pipeline, its run kept"
        assert view.run is not None and view.runs_started == 1


async def test_s_skips_a_step_not_started_yet(tui_engine_dir: Path, tmp_path: Path) -> None:
    tag = marker()
    root = Serial({"slow": Exec(f"echo {tag}; sleep 3"), "later": Exec(f"echo {tag} > /later")})
    async with app_for(root, tui_engine_dir, tmp_path).run_test(size=SIZE) as pilot:
        view = view_of(pilot)
        await until(pilot, lambda: view.run is not None and view.run.runs["/slow"].state is State.RUNNING,
                    timeout=60, what="the first step to run")
        view.tree.select_path("/later")
        await pilot.press("s")
        assert label(view, "/later") == "↷ later  skipped"
        await until(pilot, lambda: ended(view), timeout=60, what="the run to end")
        runs = view.run.runs  # type: ignore[union-attr]
        assert runs["/later"].skipped and runs["/later"].operation is None, "nothing ran for it"
        assert runs["/"].state is State.DONE
        await pilot.press("s")
        assert label(view, "/later") == "○ later" and root["later"].params.skip is None, "unskipped for a re-run"


async def test_s_on_a_finished_step_marks_its_row_at_once_and_s_again_clears_it(tui_engine_dir: Path,
                                                                                tmp_path: Path) -> None:
    root = Serial({"done": Exec(f"echo {marker()}")})
    async with app_for(root, tui_engine_dir, tmp_path).run_test(size=SIZE) as pilot:
        view = view_of(pilot)
        await until(pilot, lambda: ended(view), timeout=60, what="the run to end")
        ran = label(view, "/done")
        assert ran.startswith("✓ done  ") and "skipped" not in ran
        view.tree.select_path("/done")
        await pilot.press("s")
        assert root["done"].params.skip, "skipped for later runs"
        assert label(view, "/done") == f"✓ ↷ done  {ran.split('  ', 1)[1]} · skipped next run", "it ran; next: not"
        await pilot.press("s")
        assert label(view, "/done") == ran and root["done"].params.skip is None


async def test_help_lists_the_pipeline_keys(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = app_for(Serial({"x": Exec("true")}), tui_engine_dir, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: ended(view_of(pilot)), timeout=60, what="the run")
        ids = {b.id for _title, bindings in app.help_sections() for b in bindings}  # type: ignore[union-attr]
        assert {"pipeline.rerun", "pipeline.skip", "pipeline.next-error", "pipeline.make-working",
                "pipeline.back", "pipeline"} <= ids


async def test_quitting_mid_run_kills_the_steps_quietly(tui_engine_dir: Path, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    root = Parallel({f"sleep{i}": Exec(f"echo {marker()}; sleep 30") for i in range(2)})
    app = app_for(root, tui_engine_dir, tmp_path)
    with caplog.at_level(logging.ERROR, logger="contree_tui.pipeline"):
        async with app.run_test(size=SIZE) as pilot:
            view = view_of(pilot)
            await until(pilot, lambda: view.run is not None and view.run.counts()[State.RUNNING] == 2, timeout=60,
                        what="both steps running")
            run = view.run
            await pilot.press("q")
    assert run is not None and run.counts()[State.KILLED] == 2, "the run ended with the app"
    assert not [r for r in caplog.records if "listener failed" in r.getMessage()], "no view error on the way out"


async def test_a_run_outliving_its_view_does_not_trip_the_listener(caplog: pytest.LogCaptureFixture) -> None:
    # what quitting mid-run does in a terminal: the killed steps' events arrive once the widgets are gone
    root = Serial({"x": Exec("true")})
    app = ContreeApp(FrozenBackend(), working=WORKING, clock=frozen_clock)
    with caplog.at_level(logging.ERROR, logger="contree_tui.pipeline"):
        async with app.run_test(size=SIZE) as pilot:
            view = PipelineScreen(PipelineLaunch(root, "t.py:f", image=BUSYBOX), start=False)
            await app.push_screen(view)
            await until(pilot, lambda: app.focused is view.tree, what="the view to settle")
            run = PipelineRun(root, None, image=BUSYBOX, cache=StepCache(None))  # type: ignore[arg-type]
            view.attach(run)
            await app.pop_screen()
            await until(pilot, lambda: not view.is_attached, what="the view to be removed")
            run.runs["/x"].state = State.KILLED
            run._emit(PipelineEvent("state", run.runs["/x"]))
    assert not [r for r in caplog.records if "listener failed" in r.getMessage()]


async def test_a_run_that_cannot_start_says_so_in_the_header(tui_engine_dir: Path, tmp_path: Path) -> None:
    root = Serial({"x": Exec("true").set(tag="twice"), "y": Exec("true").set(tag="twice")})
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path, pipeline=PipelineLaunch(root, "t.py:f"))
    async with app.run_test(size=SIZE) as pilot:
        view = view_of(pilot)
        title = view.query_one("#pipeline-title")
        await until(pilot, lambda: "connecting" not in str(title.render()), what="the run's start to be refused")
        assert str(title.render()).startswith("not started: /y: tag 'twice' is already /x's"), "not `connecting…`"


async def test_without_image_it_runs_on_the_working_snapshot_as_the_pipeline_verb_does(tui_engine_dir: Path,
                                                                                        tmp_path: Path) -> None:
    root = Serial({"x": Exec(f"echo {marker()}")})  # no image anywhere, and no --image
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path, pipeline=PipelineLaunch(root, "t.py:f"))
    async with app.run_test(size=SIZE) as pilot:
        view = view_of(pilot)
        await until(pilot, lambda: ended(view), timeout=60, what="the run to end")
        working = app.main.position.working
        assert working is not None and view.launch.image == working
        assert view.run is not None and view.run.runs["/x"].state is State.DONE, view.problem
        assert view.run.runs["/x"].source == working


async def test_a_run_stopped_by_an_error_says_why_in_the_header_and_a_toast(tui_engine_dir: Path,
                                                                            tmp_path: Path) -> None:
    missing = f"tag:nothing-{marker()}"
    root = Serial({"x": Exec("true")})
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path, pipeline=PipelineLaunch(root, "t.py:f", image=missing))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        view = view_of(pilot)
        title = view.query_one("#pipeline-title")
        await until(pilot, lambda: str(title.render()).startswith("stopped: "), what="the header to say it stopped")
        assert f"image {missing!r} not found" in str(title.render())
        assert any(t.startswith(f"pipeline stopped: image {missing!r} not found") for t in toasts(app)), toasts(app)
