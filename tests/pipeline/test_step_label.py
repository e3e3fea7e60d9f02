"""A function step's operation is named as the user wrote it (`/find primes · sieve(30)`), not by the runner's
command line: in the operation's record every view reads (the snapshot tree, the operations table) and in
`contree-tui ops`; the official client reads the operation as before, the sandbox sees the name too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from contree_tui.client.connection import Connection
from contree_tui.client.records import OperationRecord
from contree_tui.client.step_label import STEP_LABEL_ENV
from contree_tui.pipeline import Exec, Serial
from contree_tui.pipeline.executor import PipelineRun, State
from tests.pipeline import sample_pipelines as sp

ROOT = Path(__file__).resolve().parents[2]


async def test_a_function_steps_operation_is_labelled_by_its_node_and_call(
        connection: Connection, python_image: str, python_engine: tuple[Path, str], tmp_path: Path) -> None:
    root = Serial().set(image=python_image)
    root["find primes"] = Exec(sp.sieve, 20)
    root["shell"] = Exec(f"echo ${STEP_LABEL_ENV}-")  # a shell step: its own command, no label
    run = PipelineRun(root, connection)
    assert await run.run() is State.DONE
    step = run.runs["/find primes"]
    assert step.operation is not None
    # the official client parses the operation (its metadata's env carries the label)
    response = await connection.client.get_operation_status(step.operation)
    assert OperationRecord.from_response(response).command == "/find primes · sieve(n=20)"
    shell = run.runs["/shell"]
    assert bytes(shell.output).decode().strip() == "-", "a shell step carries no label"
    assert OperationRecord.from_response(await connection.client.get_operation_status(shell.operation or "")
                                         ).command == f"echo ${STEP_LABEL_ENV}-"

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    listed = subprocess.run([sys.executable, "-m", "contree_tui.cli", "ops", "--json", "--state-dir",
                             str(python_engine[0]), "-C", str(tmp_path)], capture_output=True, text=True,
                            timeout=120, env=env)
    assert listed.returncode == 0, listed.stderr
    commands = {row["uuid"]: row.get("command") for row in json.loads(listed.stdout)}
    assert commands.get(step.operation) == "/find primes · sieve(n=20)", listed.stdout[:2000]
