"""A function step's operation, looked at outside the pipeline: `contree-tui logs OP` and the TUI's log pane
(the operation selected in the operations table) show its return value as `→ returned: VALUE`, not the
runner's raw record `\\x1e@contree-pipeline-result {...}`; and the pipeline view's node log shows the value
once, by return_display's rule. Real function steps on the bootstrapped Debian image (python3)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid as uuidlib
from pathlib import Path

from contree_tui.client.connection import Connection
from contree_tui.client.step_result import RESULT_MARK
from contree_tui.pipeline import Exec, Serial, function_runner
from contree_tui.pipeline.executor import PipelineRun, State
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import Stream
from contree_tui.tui.screens.pipeline_view import NodeLogs
from tests.pipeline.result_samples import echo_back, greet, many
from tests.tui.helpers import loaded, until

ROOT = Path(__file__).resolve().parents[2]
RETURNED = '→ returned: {"letters": 4, "words": 2}'


def test_the_runner_keeps_the_clients_mark() -> None:
    """The runner is uploaded alone into the sandbox (stdlib only), so it holds a copy of the mark."""
    assert function_runner.RESULT_MARK == RESULT_MARK


async def run_step(connection: Connection, image: str, path: str, step: Exec) -> tuple[PipelineRun, NodeLogs]:
    """Run one step, its node log fed live as the pipeline view feeds it."""
    root = Serial().set(image=image)
    root[path] = step
    run = PipelineRun(root, connection)
    logs = NodeLogs(run)
    run.subscribe(logs.feed)
    assert await run.run() is State.DONE, bytes(run.runs[f"/{path}"].output).decode()
    return run, logs


async def test_logs_of_a_function_steps_operation_show_the_returned_line(connection: Connection,
                                                                          python_engine: tuple[Path, str]) -> None:
    name = uuidlib.uuid4().hex[:4]  # a fresh step: no cache hit from an earlier run
    run, logs = await run_step(connection, python_engine[1], "greet", Exec(greet, name))
    step = run.runs["/greet"]
    assert step.operation
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree's code, whatever is installed
    done = subprocess.run([sys.executable, "-m", "contree_tui.cli", "logs", step.operation, "--state-dir",
                           str(python_engine[0])], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"hello {name}\nno newline\n{RETURNED}\n", done.stdout

    # the pipeline view's node log: the value once, labelled, above the outcome line
    lines = list(logs.buffers["/greet"])
    assert lines[-2:-1] == [(Stream.META, RETURNED)], lines
    assert lines[-1][1].startswith("── ✓ done") and "returned" not in lines[-1][1]
    assert sum("returned" in text for _stream, text in lines) == 1


async def test_a_step_whose_output_ends_with_its_value_shows_no_returned_line_in_the_pipeline_view(
        connection: Connection, python_image: str) -> None:
    _run, logs = await run_step(connection, python_image, "echo", Exec(echo_back, uuidlib.uuid4().hex[:6]))
    texts = [text for _stream, text in logs.buffers["/echo"]]
    assert not any("returned" in text for text in texts), texts  # printed last: the value adds nothing


async def test_the_log_pane_shows_the_returned_line_for_a_function_steps_operation(
        connection: Connection, python_engine: tuple[Path, str], tmp_path: Path) -> None:
    name = uuidlib.uuid4().hex[:4]
    run, _logs = await run_step(connection, python_engine[1], "greet", Exec(greet, name))
    operation = run.runs["/greet"].operation
    assert operation
    app = ContreeApp(state_dir=python_engine[0], folder=tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        await until(pilot, lambda: operation in table.operations, what="the step's operation in the table")
        table.focus()
        table.select(operation)
        view = screen.log_panel.view
        await until(pilot, lambda: screen.buffers.get(operation) is not None and screen.buffers[operation].complete,
                    what="the operation's log read")
        await pilot.pause()
        returned = RETURNED
        assert view.text_lines()[:3] == [f"hello {name}", "no newline", returned], view.text_lines()
        assert screen.buffers[operation].lines.stream(2) is Stream.META  # drawn dimmed, as the TUI's own lines
        assert not any(RESULT_MARK[1:] in text for text in view.text_lines())


async def test_a_large_return_value_leaves_no_piece_of_its_record_in_the_pipeline_view(
        connection: Connection, python_image: str) -> None:
    """The executor drops the record from the output it streams; a record longer than one chunk left its
    tail (the JSON after the chunk that held the mark) in the node's log."""
    run, logs = await run_step(connection, python_image, "many", Exec(many, 20_000 + uuidlib.uuid4().int % 1000))
    step = run.runs["/many"]
    assert step.return_value is not None and len(step.return_value.data) >= 20_000
    texts = [text for _stream, text in logs.buffers["/many"]]
    assert texts[1] == "counting" and texts[2].startswith("→ returned: [0, 1, 2, "), texts[:3]
    assert len(texts) == 4 and texts[3].startswith("── ✓ done"), [text[:80] for text in texts]
