"""Memory and concurrency totals (issue #10, item 8): admission keeps runs past the engine's memory budget
PENDING in arrival order, a PENDING run can be cancelled, a stopping engine fails its queue, and a run
the OOM killer hit is FAILED, not SUCCESS."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.models import Operation, OperationStatus
from contree_tui.engine.sandbox.limits import Limits

MiB = 1 << 20
# Room for two runs: each reserves 64 MiB of a 128 MiB budget.
TWO_RUNS = EngineConfig(limits=Limits(memory_bytes=64 * MiB), run_memory_reserve=64 * MiB, memory_budget=128 * MiB)


async def spawn_waiting(engine: Engine, image: str) -> Operation:
    """A run that reads one line of stdin, then exits: it holds its place until `release`."""
    return await engine.spawn({"image": image, "command": "read line", "shell": True,
                               "stdin": {"value": "", "close": False}})


async def until_running(engine: Engine, op_uuid: str) -> None:
    async for event in engine.follow(op_uuid):
        if event.type == "spawn":
            return
    raise AssertionError(f"{op_uuid} ended before its command started")


async def release(engine: Engine, op_uuid: str) -> Operation:
    run = engine.instance_run(op_uuid)
    assert run is not None
    await asyncio.to_thread(run.write_stdin, b"go\n", close=True)
    return await engine.wait(op_uuid)


async def test_third_run_past_the_budget_stays_pending_until_one_ends(
        open_engine: Callable[..., Awaitable[Engine]]) -> None:
    engine = await open_engine(TWO_RUNS)
    image = (await engine.ensure_busybox()).uuid
    first, second = await spawn_waiting(engine, image), await spawn_waiting(engine, image)
    await until_running(engine, first.uuid)
    await until_running(engine, second.uuid)
    third = await spawn_waiting(engine, image)
    fourth = await spawn_waiting(engine, image)
    await asyncio.sleep(0.2)  # a run that was admitted would have started by now (a run starts in ~3 ms)
    for queued in (third, fourth):
        assert engine.store.get_operation(queued.uuid).status == OperationStatus.PENDING
        assert engine.instance_run(queued.uuid) is None and engine.store.last_event_id(queued.uuid) == 0
    done = await release(engine, first.uuid)
    assert done.status == OperationStatus.SUCCESS
    await until_running(engine, third.uuid)  # first in line goes first
    assert engine.store.get_operation(fourth.uuid).status == OperationStatus.PENDING
    started = engine.store.get_operation(third.uuid).started_at
    assert started is not None and done.finished_at is not None and started >= done.finished_at
    for op in (second, third):
        assert (await release(engine, op.uuid)).status == OperationStatus.SUCCESS
    await until_running(engine, fourth.uuid)
    assert (await release(engine, fourth.uuid)).status == OperationStatus.SUCCESS


async def test_cancel_of_a_pending_run(open_engine: Callable[..., Awaitable[Engine]]) -> None:
    engine = await open_engine(EngineConfig(limits=Limits(memory_bytes=64 * MiB), memory_budget=64 * MiB,
                                            run_memory_reserve=64 * MiB))
    image = (await engine.ensure_busybox()).uuid
    running = await spawn_waiting(engine, image)
    await until_running(engine, running.uuid)
    queued = await spawn_waiting(engine, image)
    cancelled = await asyncio.wait_for(engine.cancel(queued.uuid), 5)
    assert cancelled.status == OperationStatus.CANCELLED and cancelled.started_at is None
    assert [e.type for e in engine.store.events(queued.uuid)] == ["shutdown", "completion"]
    assert (await release(engine, running.uuid)).status == OperationStatus.SUCCESS


async def test_engine_stop_fails_queued_runs(tmp_path: Path) -> None:
    config = EngineConfig(limits=Limits(memory_bytes=64 * MiB), max_concurrent_runs=1)
    engine = await Engine.open(tmp_path / "state", config)
    image = (await engine.ensure_busybox()).uuid
    running = await spawn_waiting(engine, image)
    await until_running(engine, running.uuid)
    queued = await spawn_waiting(engine, image)
    await asyncio.wait_for(engine.close(), 10)
    engine = await Engine.open(tmp_path / "state", config)
    try:
        op = engine.store.get_operation(queued.uuid)
        assert op.status == OperationStatus.FAILED and op.error == "engine stopped" and op.started_at is None
        assert engine.store.get_operation(running.uuid).status == OperationStatus.FAILED
    finally:
        await engine.close()


async def test_bounded_concurrency(open_engine: Callable[..., Awaitable[Engine]]) -> None:
    engine = await open_engine(EngineConfig(max_concurrent_runs=3))
    image = (await engine.ensure_busybox()).uuid
    ops = [await spawn_waiting(engine, image) for _ in range(5)]
    for op in ops[:3]:
        await until_running(engine, op.uuid)
    await asyncio.sleep(0.2)
    assert [engine.store.get_operation(op.uuid).status for op in ops[3:]] == [OperationStatus.PENDING] * 2
    for op in ops:
        await until_running(engine, op.uuid)
        assert (await release(engine, op.uuid)).status == OperationStatus.SUCCESS


async def test_oom_killed_run_is_failed(open_engine: Callable[..., Awaitable[Engine]]) -> None:
    # Before: the command died of SIGKILL at its 32 MiB cap and the operation said SUCCESS (exit signal 9).
    engine = await open_engine(EngineConfig(limits=Limits(memory_bytes=32 * MiB)))
    image = (await engine.ensure_busybox()).uuid
    op = await engine.run({"image": image, "shell": True, "disposable": True,
                           "command": "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}"})
    assert op.status == OperationStatus.FAILED, (op.status, op.error)
    assert op.error is not None and op.error.startswith("out of memory")
    # The slot is reused by the next run: it must not inherit the count.
    again = await engine.run({"image": image, "command": "true", "disposable": True})
    assert again.status == OperationStatus.SUCCESS, again.error


async def test_memory_budget_is_a_hard_limit_for_all_runs(open_engine: Callable[..., Awaitable[Engine]]) -> None:
    # A run that outgrows its reservation still cannot take more than the engine's budget: the kernel caps
    # the engine's parent cgroup, and the run is FAILED (out of memory) rather than the host running short.
    engine = await open_engine(EngineConfig(limits=Limits(memory_bytes=512 * MiB), memory_budget=48 * MiB,
                                            run_memory_reserve=MiB))
    image = (await engine.ensure_busybox()).uuid
    op = await engine.run({"image": image, "shell": True, "disposable": True,
                           "command": "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}"})
    assert op.status == OperationStatus.FAILED and op.error is not None and op.error.startswith("out of memory")


async def test_pending_run_through_the_api(open_engine: Callable[..., Awaitable[Engine]]) -> None:
    from tests.security.limits_helpers import api_client

    engine = await open_engine(EngineConfig(max_concurrent_runs=1))
    image = (await engine.ensure_busybox()).uuid
    body = {"image": image, "command": "read line", "shell": True, "stdin": {"value": "", "close": False}}
    async with api_client(engine) as http:
        running = (await http.post("/v1/instances", json=body)).json()["uuid"]
        await until_running(engine, running)
        queued = (await http.post("/v1/instances", json=body)).json()["uuid"]
        shown = await http.get(f"/v1/operations/{queued}")
        assert shown.json()["status"] == "PENDING" and shown.headers["retry-after"]
        assert (await http.delete(f"/v1/operations/{queued}")).status_code == 202
        assert (await http.get(f"/v1/operations/{queued}")).json()["status"] == "CANCELLED"
        assert (await release(engine, running)).status == OperationStatus.SUCCESS
