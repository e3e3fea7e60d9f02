"""The step counts behind both bars (pipeline/step_progress.py) and the headless printer's bar line, from events
set by hand (nothing runs): what a terminal receives, and that a pipe receives only the lines."""

from __future__ import annotations

import io

from contree_tui.client.progress import ERASE_LINE
from contree_tui.pipeline import Exec, Parallel, Serial
from contree_tui.pipeline.executor import PipelineEvent, PipelineRun, State
from contree_tui.pipeline.headless import ProgressPrinter
from contree_tui.pipeline.step_cache import StepCache
from contree_tui.pipeline.step_progress import StepProgress


def a_run() -> PipelineRun:
    root = Serial({"a": Exec("true"), "p": Parallel({"b": Exec("true"), "c": Exec("true")}), "d": Exec("true")})
    return PipelineRun(root, None, image="tag:x", cache=StepCache(None))  # type: ignore[arg-type]  (never runs)


def set_state(run: PipelineRun, path: str, state: State) -> None:
    node = run.runs[path]
    node.state = state
    run._emit(PipelineEvent("state", node))


def test_steps_count_ended_and_skipped_ones_as_done() -> None:
    run = a_run()
    assert StepProgress.of(run) == StepProgress(done=0, total=4, running=0, errors=0), "parents are not steps"
    set_state(run, "/a", State.DONE)
    set_state(run, "/p/b", State.RUNNING)
    set_state(run, "/p/c", State.ERROR)
    run.runs["/d"].skipped = True
    assert StepProgress.of(run) == StepProgress(done=3, total=4, running=1, errors=1)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_each_line_goes_above_the_bar_which_is_redrawn_under_it() -> None:
    run, out, now = a_run(), Terminal(), [0.0]
    printer = ProgressPrinter(out, clock=lambda: now[0], run=run)
    run.subscribe(printer)
    set_state(run, "/a", State.RUNNING)
    now[0] = 12.5
    set_state(run, "/a", State.DONE)
    assert out.getvalue() == (
        "[   0.0s] run   /a  on -\n"  # nothing drawn yet: nothing to erase
        f"{ERASE_LINE}[>                       ]  0/4 steps  1 running  0 errors  0.00s"
        f"{ERASE_LINE}[  12.5s] done  /a  0.00s  checkpoint -\n"  # the bar erased, the line in its place
        f"{ERASE_LINE}[======>                 ]  1/4 steps  0 running  0 errors  12.5s")  # the bar under it
    printer.close()
    assert out.getvalue().endswith(ERASE_LINE), "erased at the end"


def test_in_a_pipe_the_printer_writes_the_lines_only() -> None:
    run, out = a_run(), io.StringIO()
    run.subscribe(ProgressPrinter(out, clock=lambda: 0.0, run=run))
    set_state(run, "/a", State.RUNNING)
    set_state(run, "/a", State.DONE)
    printer_lines = ["[   0.0s] run   /a  on -", "[   0.0s] done  /a  0.00s  checkpoint -"]
    assert out.getvalue() == "\n".join(printer_lines) + "\n"
