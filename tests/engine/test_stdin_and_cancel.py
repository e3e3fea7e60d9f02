"""stdin shows up in the event log; a kept-open stdin is closed when the run ends; early cancel works."""

from __future__ import annotations

import os

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Image, OperationStatus
from contree_tui.engine.output import decode_stream


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _swept(engine: Engine) -> None:
    """Until the background removal of finished runs' scratch dirs is done: its rmtree holds dir fds."""
    await engine.instances.trash.emptied()


async def test_stdin_is_recorded_as_events(engine: Engine, busybox: Image) -> None:
    op = await engine.run({"image": busybox.uuid, "command": "cat", "stdin": {"value": "hello\n"},
                           "disposable": True})
    events = engine.store.events(op.uuid)
    stdin = [e for e in events if e.type == "stdin"]
    assert b"".join(decode_stream(e.data) for e in stdin) == b"hello\n"
    assert all(e.spid == 1 for e in stdin)


async def test_a_kept_open_stdin_does_not_leak_when_the_run_ends(engine: Engine, busybox: Image) -> None:
    body = {"image": busybox.uuid, "command": "true", "stdin": {"value": "", "close": False}, "disposable": True}
    await engine.run(body)
    await _swept(engine)
    before = _open_fds()
    for _ in range(10):
        op = await engine.run(body)
        assert op.status is OperationStatus.SUCCESS
    await _swept(engine)
    assert _open_fds() <= before + 1


async def test_cancel_right_after_spawn_cancels(engine: Engine, busybox: Image) -> None:
    op = await engine.spawn({"image": busybox.uuid, "command": "sleep 30", "shell": True})
    done = await engine.cancel(op.uuid)
    assert done.status is OperationStatus.CANCELLED
    assert done.duration < 20
