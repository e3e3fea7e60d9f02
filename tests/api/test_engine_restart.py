"""A client following an operation while the served engine stops or dies sees it end FAILED with a reason."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from contree_client.httpx import ContreeAsyncClient

from contree_tui.client.embedded import engine_pid, ensure_engine
from contree_tui.engine.state_dir import StateDir

CLI = [sys.executable, "-m", "contree_tui.cli"]


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[Path]:
    root = tmp_path / "engine"
    yield root
    subprocess.run([*CLI, "engine", "stop", "--state-dir", str(root)], capture_output=True, check=False)


def _client(sock: Path) -> ContreeAsyncClient:
    http = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(sock)), timeout=30)
    return ContreeAsyncClient("local", base_url="http://engine", httpx_client=http)


async def test_engine_stop_ends_a_followed_run_failed_with_its_reason(state: Path) -> None:
    sock = await ensure_engine(state)
    client = _client(sock)
    op = await client.spawn_instance("sleep 60", "tag:busybox:latest", shell=True)
    events: list[str] = []

    async def follow() -> None:
        async for event in client.follow_operation_events(op.uuid):
            events.append(event.type)

    follower = asyncio.create_task(follow())
    while "spawn" not in events:
        await asyncio.sleep(0.05)
    stopped = subprocess.run([*CLI, "engine", "stop", "--state-dir", str(state)], capture_output=True, text=True,
                             check=False)
    assert stopped.returncode == 0, stopped.stderr
    await asyncio.wait_for(follower, 30)
    assert events[-1] == "completion"
    sock = await ensure_engine(state)
    status = await _client(sock).get_operation_status(op.uuid)
    assert getattr(status.status, "value", status.status) == "FAILED"
    assert "engine stopped" in (status.error or "")


async def test_engine_killed_then_restarted_reports_the_run_failed(state: Path) -> None:
    sock = await ensure_engine(state)
    client = _client(sock)
    op = await client.spawn_instance("sleep 60", "tag:busybox:latest", shell=True)
    last_id = 0
    async for event in client.follow_operation_events(op.uuid):
        last_id = event.id
        if event.type == "spawn":
            break
    pid = engine_pid(state)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while engine_pid(state) is not None:
        await asyncio.sleep(0.05)
    sock = await ensure_engine(state)  # a client needing the engine starts a new one
    types, completion = [], None
    async for event in _client(sock).follow_operation_events(op.uuid, last_event_id=last_id):
        types.append(event.type)
        completion = event
    assert types[-1] == "completion" and "spawn" not in types, "resumed after the last seen event"
    assert completion is not None and completion.data.status == "FAILED"
    assert "restart" in (completion.data.error or "")


async def test_engine_stop_cleans_up_after_itself(state: Path) -> None:
    """SIGTERM ends in Engine.close: socket, pid file and the engine's cgroups are gone (uvicorn re-raised the
    signal once, which killed the process before its cleanup and left all three behind)."""
    sock = await ensure_engine(state)
    client = _client(sock)
    op = await client.spawn_instance("true", "tag:busybox:latest", shell=True)
    async for _ in client.follow_operation_events(op.uuid):
        pass
    name = f"contree-tui-{StateDir(state).id}"
    ours = [Path("/sys/fs/cgroup") / c / name for c in ("memory", "cpu", "pids", "")]  # v1 controllers, or v2
    assert any(group.is_dir() for group in ours), "the engine runs without cgroups here"
    stopped = subprocess.run([*CLI, "engine", "stop", "--state-dir", str(state)], capture_output=True, text=True,
                             check=False)
    assert stopped.returncode == 0, stopped.stderr
    assert not sock.exists()
    assert not (state / "engine.pid").exists()
    assert not any(group.exists() for group in ours)
