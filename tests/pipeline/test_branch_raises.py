"""A Parallel whose branch raises (not a failed step: an image not found, the engine gone) stops its other
branches: their sandboxes are cancelled on the server, their nodes end Killed, and the exception is reported
once, as itself (not a TaskGroup's ExceptionGroup)."""

from __future__ import annotations

import time

import pytest
from contree_client.models import OperationStatus

from contree_tui.client.connection import Connection
from contree_tui.pipeline import Exec, Parallel, Serial
from contree_tui.pipeline.executor import PipelineRun, State
from contree_tui.pipeline.nodes import PipelineError
from tests.pipeline.conftest import BUSYBOX


async def test_a_branch_that_raises_cancels_its_siblings_sandboxes(connection: Connection) -> None:
    root = Parallel().set(image=BUSYBOX)
    root["slow"] = Exec("sleep 30")
    broken = root["broken"] = Serial()
    broken["first"] = Exec("sleep 2")  # the slow sibling is running by the time the next step raises
    broken["lost"] = Exec("true").set(image="tag:no-such-image-anywhere")
    run = PipelineRun(root, connection)
    started = time.monotonic()
    with pytest.raises(PipelineError, match="no-such-image-anywhere"):
        await run.run()
    assert time.monotonic() - started < 20  # not after the 30 s sleep
    slow = run.runs["/slow"]
    assert slow.state is State.KILLED and slow.operation is not None
    ended = await connection.client.wait_operation(slow.operation, timeout=20)
    assert ended.status is OperationStatus.CANCELLED  # stopped on the server too, as a kill does
    assert run.runs["/broken/first"].state is State.DONE
    assert not [p for p, r in run.runs.items() if r.state in (State.QUEUED, State.RUNNING)]
