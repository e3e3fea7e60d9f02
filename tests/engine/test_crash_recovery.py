"""An engine killed with SIGKILL mid-run: the next engine on the same state dir closes the books."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import OperationStatus
from contree_tui.engine.sandbox.limits import CGROUP_ROOT, detect_cgroup_version
from tests.engine.helpers import host_processes, lingering, sh, stdout

OpenEngine = Callable[..., Awaitable[Engine]]
SLEEPER = ("sleep", "1000")
REPO = Path(__file__).resolve().parents[2]

ENGINE_SCRIPT = """
import asyncio, sys
from contree_tui.engine.engine import Engine

async def main():
    engine = await Engine.open(sys.argv[1])
    busybox = await engine.ensure_busybox()
    op = await engine.spawn({"image": busybox.uuid, "command": "sleep", "args": ["1000"], "timeout": 600})
    async for event in engine.follow(op.uuid):
        if event.type == "spawn":
            break
    print(op.uuid, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def _mounts_under(path: Path) -> list[str]:
    """Mounts below `path`; not the open engine's own bind of the state dir onto itself (userns.py)."""
    prefix = str(path.resolve())
    with open("/proc/self/mountinfo") as fh:
        return [line for line in fh if any(field.startswith(prefix) for field in line.split()[3:5])
                and line.split()[3:5] != [prefix, prefix]]


def _slots_of(engine_pid: int) -> list[Path]:
    """cgroup slots an engine process created (slot names end in the creating engine's pid)."""
    pattern = f"contree-tui-*/slot*-{engine_pid}"
    return [*CGROUP_ROOT.glob(pattern), *CGROUP_ROOT.glob(f"*/{pattern}")]


async def test_engine_killed_mid_run_leaves_a_failed_op_and_nothing_running(open_engine: OpenEngine,
                                                                            tmp_path: Path) -> None:
    state = tmp_path / "crashed"
    script = tmp_path / "engine_then_sleep.py"
    script.write_text(ENGINE_SCRIPT)
    before = host_processes(*SLEEPER)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(state), cwd=REPO, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
        op_uuid = line.decode().strip()
        assert op_uuid, "the engine process ended before the run started"
        deadline = time.monotonic() + 5
        while not host_processes(*SLEEPER) - before:
            assert time.monotonic() < deadline, "sleep 1000 never showed up on the host"
            await asyncio.sleep(0.02)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert list((state / "runs").iterdir()), "the killed engine should have left its run dir behind"
    # the sandbox does not outlive its engine even before anyone restarts it (PDEATHSIG down the chain)
    assert await lingering(SLEEPER, before, timeout=2.0) == set()

    if detect_cgroup_version() is not None:
        assert _slots_of(proc.pid), "the killed engine's run should have left its cgroup slot behind"

    engine = await open_engine(name="crashed")
    op = engine.store.get_operation(op_uuid)
    assert op.status is OperationStatus.FAILED
    assert "restart" in (op.error or "")
    assert op.finished_at is not None
    events = engine.store.events(op_uuid)
    assert [e.type for e in events][:2] == ["init", "spawn"]
    assert events[-1].type == "completion"
    assert events[-1].data["status"] == "FAILED" and "restart" in events[-1].data["error"]
    assert [e.id for e in events] == sorted({e.id for e in events})

    assert await lingering(SLEEPER, before, timeout=0.5) == set()
    assert list((state / "runs").iterdir()) == []
    assert _mounts_under(state) == []
    with open("/proc/self/mountinfo") as fh:  # the killed engine's bind of the state dir was reused, not stacked
        assert sum(line.split()[4] == str(state.resolve()) for line in fh) <= 1
    assert _slots_of(proc.pid) == [], "the dead engine's cgroup slots are removed"
    # and the state dir is usable again
    busybox = await engine.ensure_busybox()
    assert stdout(await sh(engine, busybox.uuid, "echo alive")) == "alive\n"
