"""`:pipeline FILE:FUNC [ARGS]` in the command bar, on the real app and a real engine: the pipeline file is an
ordinary one written into the session's folder, typed in as the user types it."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

from contree_tui.pipeline.executor import State
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.completion import pipeline_functions
from contree_tui.tui.screens.main import MainScreen
from contree_tui.tui.screens.pipeline_view import PipelineScreen
from contree_tui.tui.verbs import USAGE
from tests.tui.helpers import loaded, run_in_bar, toasts, until

SIZE = (140, 40)

PIPELINE = '''
from contree_tui.pipeline import Exec, Serial


def pipe(n: int) -> Serial:
    root = Serial()
    root["first"] = Exec(f"echo {tag} first $((1 + {n})) > /first")
    root["second"] = Exec("cat /first; echo {tag} second")
    return root


def slow() -> Serial:
    return Serial({"nap": Exec("echo {tag} nap; sleep 4")})


def broken():  # no return annotation: not offered as a pipeline function
    raise RuntimeError("no tree today")
'''


def write_pipeline(folder: Path) -> str:
    tag = uuidlib.uuid4().hex[:8]  # its own commands: no cache hit from another test
    (folder / "pipe.py").write_text(PIPELINE.replace("{tag}", tag))
    return tag


def the_view(app: ContreeApp) -> PipelineScreen | None:
    screen = app.screen
    return screen if isinstance(screen, PipelineScreen) else None


async def test_pipeline_verb_runs_the_file_on_the_working_snapshot_and_comes_back(tui_engine_dir: Path,
                                                                                  tmp_path: Path) -> None:
    tag = write_pipeline(tmp_path)
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        main = await loaded(pilot)
        working = main.position.working
        await run_in_bar(pilot, "pipeline pipe.py:pipe 41")
        await until(pilot, lambda: the_view(app) is not None, timeout=30, what="the pipeline view to open")
        view = the_view(app)
        assert view is not None and view.launch.image == working, "on the working snapshot's image"
        await until(pilot, lambda: view.run is not None and view.run.runs["/"].state.finished and not view.running,
                    timeout=60, what="the pipeline to end")
        runs = view.run.runs  # type: ignore[union-attr]
        assert runs["/"].state is State.DONE, [(r.path, r.error) for r in runs.values()]
        assert runs["/first"].source == working
        view.tree.select_path("/second")
        await until(pilot, lambda: f"{tag} first 42" in view.log_box.view.text_lines(), what="second's log")

        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("P")
        assert app.screen is view, "P: back to the view, its run kept"
        await pilot.press("escape")
        await run_in_bar(pilot, "pipeline")
        await until(pilot, lambda: app.screen is view, what=":pipeline alone to reopen the last one")
        assert view.runs_started == 1, "reopened, not run again"

        # the file edited, then run again: the new text runs (not the module imported the first time)
        await pilot.press("escape")
        tag = write_pipeline(tmp_path)
        await run_in_bar(pilot, "pipeline pipe.py:pipe 1")
        await until(pilot, lambda: the_view(app) not in (None, view), what="a new view for the new run")
        again = the_view(app)
        assert again is not None and not view.is_attached, "the ended pipeline's view replaced"
        again.tree.select_path("/second")
        await until(pilot, lambda: f"{tag} first 2" in again.log_box.view.text_lines(), timeout=60,
                    what="the edited file's step to run")


async def test_pipeline_verb_says_what_is_wrong_in_a_toast(tui_engine_dir: Path, tmp_path: Path) -> None:
    write_pipeline(tmp_path)
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        main = await loaded(pilot)
        await run_in_bar(pilot, "pipeline")
        await until(pilot, lambda: any("no pipeline yet" in t for t in toasts(app)), what="nothing to reopen")
        for line, says in [
            ("pipeline nope.py:pipe", ": nope.py: no such file"),
            ("pipeline pipe.py:nothing", ": pipe.py has no function 'nothing' (its functions: broken, pipe, slow)"),
            ("pipeline pipe.py:pipe many", "pipe() argument n: cannot read 'many' as int"),
            ("pipeline pipe.py:broken", "building the pipeline failed: RuntimeError: no tree today"),
            ("pipeline pipe.py", "pipe.py: name the function that builds the pipeline too, FILE:FUNC, e.g. "
                                 "pipe.py:pipe (its functions: pipe, slow)"),
            ("pipeline pipe", "expected FILE:FUNC"),
        ]:
            entries = len(main.command_log.entries)
            await run_in_bar(pilot, line)
            await until(pilot, lambda n=entries: len(main.command_log.entries) > n  # type: ignore[misc]
                        and main.command_log.entries[-1].result, what=f"{line!r} to be answered")
            said = toasts(app)[-1]
            assert said.startswith("pipeline ") and says in said, said
            assert "Traceback" not in said
            assert app.screen is main, f"{line!r}: no view opened"


async def test_a_second_pipeline_while_one_runs_is_refused_and_the_first_goes_on(tui_engine_dir: Path,
                                                                                 tmp_path: Path) -> None:
    write_pipeline(tmp_path)
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        main = await loaded(pilot)
        await run_in_bar(pilot, "pipeline pipe.py:slow")
        await until(pilot, lambda: the_view(app) is not None and the_view(app).running, what="slow to run")  # type: ignore[union-attr]
        view = the_view(app)
        await pilot.press("escape")
        await run_in_bar(pilot, "pipeline pipe.py:pipe 1")
        await until(pilot, lambda: any("one pipeline at a time" in t for t in toasts(app)), what="the refusal")
        assert toasts(app)[-1] == ":pipeline: pipe.py:slow is still running (P shows it): one pipeline at a time"
        assert app.screen is main
        await pilot.press("P")
        assert app.screen is view and view is not None and view.launch.spec == "pipe.py:slow"


async def test_the_bar_hints_and_completes_the_pipeline_verb(tui_engine_dir: Path, tmp_path: Path) -> None:
    write_pipeline(tmp_path)
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        main = await loaded(pilot)
        await pilot.press("colon", *"pipeline pi")
        await until(pilot, lambda: USAGE["pipeline"] in main.status_bar.prompt, what="the verb's usage as a hint")
        await pilot.press("tab")
        bar = main.query_one("#command-bar")
        await until(pilot, lambda: bar.value == "pipeline pipe.py", what="FILE completed from the folder")  # type: ignore[attr-defined]
        await pilot.press("colon", "tab")
        await until(pilot, lambda: bar.value == "pipeline pipe.py:pipe", what="FUNC: the function returning a Serial")  # type: ignore[attr-defined]


def test_pipeline_functions_are_read_from_the_text_builders_first() -> None:
    text = "import x\n\ndef sieve(n: int) -> list[int]: ...\n\ndef main(n: int) -> cp.Serial: ...\n\n" \
           "async def other() -> Parallel | None: ...\n\ndef _hidden() -> Serial: ...\n"
    assert pipeline_functions(text) == ["main", "other"], "annotated to build a tree: only those"
    assert pipeline_functions("def a(): ...\ndef b(): ...\n") == ["a", "b"], "no annotation: every public one"
    assert pipeline_functions("def (:") == [], "a file that does not parse: nothing to offer"
