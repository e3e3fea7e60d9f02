"""Signalling a run's command (the API's DELETE …/subprocesses/1?signal=): its whole process group, only it."""

from __future__ import annotations

import asyncio
import signal

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Image
from tests.engine.helpers import stdout


async def test_signal_reaches_the_command_group_and_ends_the_run(engine: Engine, busybox: Image) -> None:
    script = "trap 'echo got-term; exit 3' TERM; echo ready; sleep 30 & wait"
    op = await engine.spawn({"image": busybox.uuid, "command": script, "shell": True})
    async for event in engine.follow(op.uuid):
        if event.type == "stdout":
            break
    run = engine.instance_run(op.uuid)
    assert run is not None and run.command_host_pid() not in (None, run.sandbox_pid)
    assert run.signal_command(signal.SIGTERM)
    done = await asyncio.wait_for(engine.wait(op.uuid), 10)
    assert done.status.value == "SUCCESS"
    assert "got-term" in stdout(done) and done.result["state"]["exit_code"] == 3
    assert run.command_host_pid() is None and not run.signal_command(signal.SIGKILL)
