"""Runs that misbehave end, and leave the host as it was: timeouts, output floods, fork bombs, memory hogs."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.models import Image, OperationStatus
from contree_tui.engine.output import decode_stream
from contree_tui.engine.sandbox.limits import CGROUP_ROOT, V1_CONTROLLERS, Limits
from tests.engine.helpers import host_processes, lingering, sh, stdout

OpenEngine = Callable[..., Awaitable[Engine]]
SLEEPER = ("sleep", "1000")


def _slot_dirs(engine: Engine, controller: str) -> list[Path]:
    """The engine's cgroup slots for one controller (v1: one hierarchy each; v2: one shared tree)."""
    if not engine.cgroups.enabled:
        pytest.skip("no usable cgroups on this host (needs root and memory+pids controllers)")
    root = CGROUP_ROOT / engine.cgroups.name if engine.cgroups.version == 2 else \
        CGROUP_ROOT / controller / engine.cgroups.name
    return sorted(p for p in root.iterdir() if p.is_dir())


def _cgroup_empty(slot: Path) -> bool:
    return not (slot / "cgroup.procs").read_text().split()


def _engine_groups(engine: Engine) -> list[Path]:
    return [p for p in (CGROUP_ROOT / engine.cgroups.name, *(CGROUP_ROOT / c / engine.cgroups.name
                                                           for c in V1_CONTROLLERS)) if p.exists()]


async def _host_still_fine(engine: Engine, image: Image) -> None:
    assert subprocess.run(["true"]).returncode == 0
    op = await sh(engine, image.uuid, "echo still fine", disposable=True, timeout=10)
    assert op.status is OperationStatus.SUCCESS and stdout(op) == "still fine\n"


async def test_timeout_kills_the_command_and_its_background_children(engine: Engine, busybox: Image) -> None:
    before = host_processes(*SLEEPER)
    start = time.monotonic()
    op = await engine.spawn({"image": busybox.uuid, "command": "sleep 1000 & sleep 1000 & sleep 1000",
                             "shell": True, "timeout": 3})
    while len(host_processes(*SLEEPER) - before) < 3:  # all three really run before the deadline
        assert time.monotonic() - start < 3, "the three sleeps never ran together"
        await asyncio.sleep(0.01)
    op = await engine.wait(op.uuid)
    assert time.monotonic() - start < 30  # far below sleep 1000: the timeout ended it
    assert op.status is OperationStatus.SUCCESS and op.error is None  # a result, as the hosted Contree's
    assert op.result["state"]["timed_out"] is True
    assert op.result["state"]["signal"] == 9 and op.result["state"]["exit_code"] == -1
    exit_events = [e for e in engine.store.events(op.uuid) if e.type == "exit"]
    assert [e.data["timed_out"] for e in exit_events] == [True]
    # when the sandbox's pid 1 dies the kernel reaps its whole pid namespace before the run is reported
    assert await lingering(SLEEPER, before, timeout=0) == set()


async def test_cancel_kills_the_run_and_everything_it_started(engine: Engine, busybox: Image) -> None:
    before = host_processes(*SLEEPER)
    op = await engine.spawn({"image": busybox.uuid, "command": "sleep 1000 & sleep 1000", "shell": True})
    async for event in engine.follow(op.uuid):
        if event.type == "spawn":
            break
    deadline = time.monotonic() + 5
    while len(host_processes(*SLEEPER) - before) < 2:
        assert time.monotonic() < deadline, "the two sleeps never started"
        await asyncio.sleep(0.02)
    cancelled = await engine.cancel(op.uuid)
    assert cancelled.status is OperationStatus.CANCELLED
    assert cancelled.result_image_uuid is None
    assert engine.store.events(op.uuid)[-1].data["status"] == "CANCELLED"
    assert await lingering(SLEEPER, before, timeout=0) == set()


async def test_output_flood_is_capped_and_counted(engine: Engine, busybox: Image) -> None:
    start = time.monotonic()
    op = await sh(engine, busybox.uuid, "yes | head -c 5000000", truncate_output_at=100_000, disposable=True)
    assert time.monotonic() - start < 60
    assert op.status is OperationStatus.SUCCESS
    kept = decode_stream(op.result["stdout"])
    assert kept == b"y\n" * 50_000
    assert op.result["stdout"]["truncated"] is True
    events = engine.store.events(op.uuid)
    truncated = [e.data for e in events if e.type == "truncated"]
    assert truncated == [{"stream": "stdout", "bytes_emitted": 100_000, "bytes_dropped": 4_900_000}]
    streamed = b"".join(decode_stream(e.data) for e in events if e.type == "stdout")
    assert streamed == kept
    assert events[-1].type == "completion"


async def test_fork_bomb_hits_the_pids_cap_and_ends(open_engine: OpenEngine) -> None:
    engine = await open_engine(EngineConfig(limits=Limits(pids=64)))
    busybox = await engine.ensure_busybox()
    start = time.monotonic()
    # The main shell then spins on builtins: a `sleep` there could not fork either, and ended the run early.
    op = await sh(engine, busybox.uuid, "b(){ b|b& }; b; while :; do :; done", timeout=3, disposable=True)
    assert time.monotonic() - start < 25  # the timeout ended it, bomb and all
    # Either the timeout ended it, or (on a loaded machine) the cap was hit before the main shell's own fork of
    # `b|b&`, and the shell gave up with "can't fork": both end the run with the bomb contained (CI, 2 cores).
    state = op.result["state"]
    assert op.status is OperationStatus.SUCCESS and (state["timed_out"] is True or state["exit_code"] != 0), state
    assert "can't fork" in decode_stream(op.result["stderr"]).decode()
    # Idle pre-forked keepers hold slots of their own; the run's slot is the one whose cap was hit.
    slots = _slot_dirs(engine, "pids")
    assert all((s / "pids.max").read_text().strip() == "64" for s in slots)
    hit = [s for s in slots
           if int(dict(line.split() for line in (s / "pids.events").read_text().splitlines())["max"]) > 0]
    assert len(hit) == 1, "the cap was never reached, so it proved nothing"
    assert _cgroup_empty(hit[0])
    await _host_still_fine(engine, busybox)


async def test_memory_hog_is_oom_killed(open_engine: OpenEngine) -> None:
    engine = await open_engine(EngineConfig(limits=Limits(memory_bytes=64 << 20)))
    busybox = await engine.ensure_busybox()
    start = time.monotonic()
    # dd fills one 300 MB buffer from /dev/zero: every page is touched, far over the 64 MB limit
    op = await engine.run({"image": busybox.uuid, "command": "dd",
                           "args": ["if=/dev/zero", "of=/dev/null", "bs=300M", "count=1"],
                           "timeout": 20, "disposable": True})
    assert time.monotonic() - start < 30
    state = op.result["state"]
    assert state["timed_out"] is False
    assert state["signal"] == 9 or state["exit_code"] not in (0, -1), state
    limit_file, events_file = (("memory.max", "memory.events") if engine.cgroups.version == 2
                               else ("memory.limit_in_bytes", "memory.oom_control"))
    slots = _slot_dirs(engine, "memory")  # idle pre-forked keepers hold slots too
    assert all((s / limit_file).read_text().strip() == str(64 << 20) for s in slots)
    killed = [s for s in slots
              if int(dict(line.split() for line in (s / events_file).read_text().splitlines())["oom_kill"]) >= 1]
    assert len(killed) == 1, "no slot saw an OOM kill"
    assert _cgroup_empty(killed[0])
    await _host_still_fine(engine, busybox)


async def test_closing_the_engine_removes_its_cgroups(tmp_path: Path) -> None:
    engine = await Engine.open(tmp_path / "state", EngineConfig())
    try:
        busybox = await engine.ensure_busybox()
        await sh(engine, busybox.uuid, "true", disposable=True)
        if not engine.cgroups.enabled:
            pytest.skip("no usable cgroups on this host")
        assert _engine_groups(engine), "a run should have created the engine's cgroup"
    finally:
        await engine.close()
    assert _engine_groups(engine) == [], "every engine names its group after its state dir: one left is one for good"


async def test_without_cgroups_the_memory_limit_is_an_rlimit_on_the_command(open_engine: OpenEngine) -> None:
    engine = await open_engine(EngineConfig(cgroups=False, limits=Limits(memory_bytes=64 << 20)))
    busybox = await engine.ensure_busybox()
    small = await sh(engine, busybox.uuid, "ulimit -v; echo started", disposable=True)
    assert small.status is OperationStatus.SUCCESS, small.error
    assert stdout(small).split() == [str(64 << 10), "started"]
    hog = await engine.run({"image": busybox.uuid, "command": "dd",
                            "args": ["if=/dev/zero", "of=/dev/null", "bs=300M", "count=1"], "disposable": True})
    # the command's own failure, and the engine's note naming the limit in force (sandbox/address_space_note.py)
    assert hog.status is OperationStatus.FAILED and hog.error is not None and "(RLIMIT_AS" in hog.error, hog.error
    assert hog.result["state"]["exit_code"] != 0
    assert "memory" in decode_stream(hog.result["stderr"]).decode().lower()
    await _host_still_fine(engine, busybox)
