"""Limits without cgroups (#14): what a rootless engine without a delegated cgroup uses, exercised in root mode
with cgroups disabled by the config (the same code path: LimitPlan without a cgroup version)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.http import create_app
from contree_tui.engine.models import OperationStatus
from contree_tui.engine.output import decode_stream
from contree_tui.engine.sandbox.limit_plan import RESERVED_PIDS
from contree_tui.engine.sandbox.limits import Limits
from tests.api.conftest import serve, stop
from tests.engine.helpers import sh, stderr, stdout

OpenEngine = Callable[..., Awaitable[Engine]]


async def _rlimit_engine(open_engine: OpenEngine, **limits: int) -> Engine:
    engine = await open_engine(EngineConfig(limits=Limits(**limits), cgroups=False))  # type: ignore[arg-type]
    assert not engine.cgroups.enabled and not engine.limit_plan.cgroups
    return engine


async def test_memory_hog_is_stopped_by_rlimit_as(open_engine: OpenEngine) -> None:
    engine = await _rlimit_engine(open_engine, memory_bytes=64 << 20)
    busybox = await engine.ensure_busybox()
    # one 300 MB buffer: past RLIMIT_AS (64 MiB of address space) the allocation itself fails
    op = await engine.run({"image": busybox.uuid, "command": "dd",
                           "args": ["if=/dev/zero", "of=/dev/null", "bs=300M", "count=1"],
                           "timeout": 20, "disposable": True})
    state = op.result["state"]
    assert state["timed_out"] is False and state["exit_code"] not in (0, -1), state
    assert "memory" in stderr(op), stderr(op)
    # the engine's word beside the program's own (it was SUCCESS with only dd's "memory exhausted"), as RLIMIT_CPU's
    assert op.status is OperationStatus.FAILED, (op.status, op.error)
    assert op.error is not None and op.error.startswith("out of memory: the command failed (exit 1)"), op.error
    assert "64 MiB of address space per process (RLIMIT_AS" in op.error, op.error
    # a command within the limit still runs (the limit is on the command's address space, not pid 1's)
    ok = await sh(engine, busybox.uuid, "dd if=/dev/zero of=/dev/null bs=8M count=1 2>/dev/null && echo fine",
                  disposable=True, timeout=20)
    assert stdout(ok) == "fine\n"
    # a failure that says nothing of memory is the command's own: no note, the exit code as it was
    other = await sh(engine, busybox.uuid, "echo no such file >&2; exit 3", disposable=True, timeout=20)
    assert other.status is OperationStatus.SUCCESS and other.error is None, (other.status, other.error)
    assert other.result["state"]["exit_code"] == 3


async def test_cpu_spinner_is_stopped_by_rlimit_cpu(open_engine: OpenEngine) -> None:
    engine = await _rlimit_engine(open_engine, cpu_seconds=2)
    busybox = await engine.ensure_busybox()
    start = time.monotonic()
    op = await sh(engine, busybox.uuid, "while :; do :; done", timeout=60, disposable=True)
    assert time.monotonic() - start < 45  # the CPU limit ended it, not the 60 s timeout
    assert op.status is OperationStatus.FAILED, (op.status, op.error, op.result["state"])
    assert op.error is not None and "cpu time" in op.error and "RLIMIT_CPU" in op.error, op.error
    assert op.result["state"]["timed_out"] is False and op.result["state"]["signal"] == signal.SIGXCPU


async def test_fork_bomb_is_capped_per_run_and_the_engine_keeps_answering(open_engine: OpenEngine) -> None:
    engine = await _rlimit_engine(open_engine, pids=64)
    if not engine.limit_plan.pid_namespace_max:
        pytest.skip("pid_max is per pid namespace only from Linux 6.14")
    busybox = await engine.ensure_busybox()
    directory = tempfile.mkdtemp(prefix="ctlim-")
    path = str(Path(directory) / "api.sock")
    server, task = await serve(create_app(engine), uds=path)
    try:
        # Each member forks two more and stays (the classic `:(){ :|:& };:` collapses within milliseconds
        # once forks fail: its members exit on "can't fork", and the peak is too brief to sample). The command
        # itself only waits: a member whose fork fails exits, and were that the command the run would end
        # at once (CI under load: the root's own `sleep` fork failed and nothing was left to sample).
        bomb = await engine.spawn({"image": busybox.uuid,
                                   "command": "sleep 100 & b(){ b & b & sleep 100; }; b & wait",
                                   "shell": True, "timeout": 8, "disposable": True})
        async for event in engine.follow(bomb.uuid):
            if event.type == "spawn":
                break
        sandbox_pid = engine.instances._runs[bomb.uuid].sandbox_pid
        pidns = os.readlink(f"/proc/{sandbox_pid}/ns/pid")
        most, slowest = 0, 0.0
        transport = httpx.AsyncHTTPTransport(uds=path)
        async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                most = max(most, _processes_in(pidns))
                started = time.monotonic()
                response = await client.get("/v1/whoami")
                slowest = max(slowest, time.monotonic() - started)
                assert response.status_code == 200
                await asyncio.sleep(0.05)
            # another run is not starved by the bomb: its cap is its own pid namespace's, not a shared count
            other = await sh(engine, busybox.uuid, "echo other run", disposable=True, timeout=20)
            assert stdout(other) == "other run\n"
        bomb = await engine.wait(bomb.uuid)
    finally:
        await stop(server, task)
        shutil.rmtree(directory, ignore_errors=True)
    assert "can't fork" in decode_stream(bomb.result["stderr"]).decode()
    # pid_max = 300 + 64: at most 363 pids of the namespace live at once (64 once allocation wrapped)
    assert 64 <= most <= RESERVED_PIDS + 64 - 1, most
    assert slowest < 0.2, f"whoami took {slowest * 1000:.0f} ms during the fork bomb"


def _processes_in(pidns: str) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.readlink(f"/proc/{entry}/ns/pid") == pidns
            except OSError:
                continue
    return count
