"""The main process of a run (spid 1): its folded result, signals to its group, its stdin."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest
from contree_client.exceptions import APIStatusError, BadRequestError, ConflictError, GoneError, NotFoundError
from contree_client.httpx import ContreeAsyncClient
from contree_client.models import ClosableStreamRepr

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Image
from tests.api.helpers import run, text


async def until_output(client: ContreeAsyncClient, op_uuid: str, wanted: str = "") -> None:
    seen = ""
    async for event in client.follow_operation_events(op_uuid, timeout=30):
        if event.type == "stdout":
            seen += event.data.value
            if wanted in seen:
                return
    raise AssertionError(f"no output {wanted!r}")


async def test_result_of_the_main_process(client: ContreeAsyncClient, busybox: Image) -> None:
    op = await run(client, busybox.uuid, "echo folded; exit 4")
    result = await client.operation_subprocess(op.uuid, 1)
    assert text(result.stdout) == "folded\n" and result.state.exit_code == 4
    assert result.resources.elapsed_time >= 0
    with pytest.raises(NotFoundError):
        await client.operation_subprocess(op.uuid, 2)
    spawned = await client.spawn_instance("echo live; sleep 30", busybox.uuid, shell=True)
    await until_output(client, spawned.uuid)
    live = await client.operation_subprocess(spawned.uuid, 1)
    assert text(live.stdout) == "live\n" and live.state.exit_code == -1 and live.state.signal == -1
    await client.cancel_operation(spawned.uuid)


async def test_signals_reach_the_command_group(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                               busybox: Image) -> None:
    script = "trap 'echo term; exit 7' TERM; echo ready; sleep 30 & wait"
    spawned = await client.spawn_instance(script, busybox.uuid, shell=True)
    await until_output(client, spawned.uuid)
    for bad in ("BOGUS", "99", "SIG_IGN"):
        with pytest.raises(BadRequestError):
            await client.operation_subprocess_kill(spawned.uuid, 1, signal=bad)
    with pytest.raises(NotFoundError):
        await client.operation_subprocess_kill(spawned.uuid, 2)
    await client.operation_subprocess_kill(spawned.uuid, 1, signal="TERM")
    op = await client.wait_operation(spawned.uuid, timeout=10)
    assert op.status.value == "SUCCESS"
    assert text(op.metadata.result.stdout) == "ready\nterm\n" and op.metadata.result.state.exit_code == 7
    with pytest.raises(ConflictError):
        await client.operation_subprocess_kill(spawned.uuid, 1)
    for form in ("15", "SIGTERM", "term", None):
        spawned = await client.spawn_instance("echo up; sleep 30", busybox.uuid, shell=True)
        await until_output(client, spawned.uuid)
        await client.operation_subprocess_kill(spawned.uuid, 1, signal=form)
        state = (await client.wait_operation(spawned.uuid, timeout=10)).metadata.result.state
        assert state.exit_code == -1 and state.signal == (9 if form is None else 15), form
    assert (await raw.delete(f"/v1/operations/{spawned.uuid}/subprocesses/0")).status_code == 400


async def test_stdin_write_and_close(client: ContreeAsyncClient, busybox: Image) -> None:
    spawned = await client.spawn_instance("echo ready; cat; echo eof", busybox.uuid, shell=True,
                                          stdin=ClosableStreamRepr(value="first\n", close=False))
    await until_output(client, spawned.uuid, "first\n")  # the spawn's own stdin chunk is in first
    await client.operation_subprocess_stdin(spawned.uuid, 1, "second\n", close=False)
    await client.operation_subprocess_stdin(spawned.uuid, 1, "dGhpcmQK", encoding="base64", close=False)
    await client.operation_subprocess_stdin(spawned.uuid, 1, "", close=True)
    with pytest.raises(APIStatusError) as closed:
        await client.operation_subprocess_stdin(spawned.uuid, 1, "late")
    assert closed.value.status in (409, 410)
    op = await client.wait_operation(spawned.uuid, timeout=10)
    assert text(op.metadata.result.stdout) == "ready\nfirst\nsecond\nthird\neof\n"
    with pytest.raises(GoneError):
        await client.operation_subprocess_stdin(spawned.uuid, 1, "after the end")


async def test_stdin_refusals(client: ContreeAsyncClient, raw: httpx.AsyncClient, busybox: Image) -> None:
    spawned = await client.spawn_instance("echo ready; sleep 30", busybox.uuid, shell=True)
    await until_output(client, spawned.uuid)
    with pytest.raises(ConflictError):  # started with the default close=true: stdin is at EOF already
        await client.operation_subprocess_stdin(spawned.uuid, 1, "x")
    with pytest.raises(NotFoundError):
        await client.operation_subprocess_stdin(spawned.uuid, 2, "x")
    url = f"/v1/operations/{spawned.uuid}/subprocesses/1/stdin"
    for body in (b"{", b"[]", b'{"value": 1}', b'{"value": "x", "encoding": "utf-16"}',
                 b'{"value": "!!", "encoding": "base64"}', b'{"value": "x", "close": "yes"}'):
        assert (await raw.post(url, content=body)).status_code == 400, body
    await client.cancel_operation(spawned.uuid)


async def _result_when_exited(client: ContreeAsyncClient, op: str, spid: int) -> object:
    for _ in range(300):
        try:
            result = await client.operation_subprocess(op, spid)
        except APIStatusError as exc:
            assert exc.status == 425, exc  # created, not yet spawned
            result = None
        if result is not None and (result.state.exit_code != -1 or result.state.signal != -1):
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"process {spid} never exited")


async def test_another_process_runs_inside_the_running_instance(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                                                busybox: Image) -> None:
    spawned = await client.spawn_instance("mkdir -p /work && echo main > /work/m && sleep 30", busybox.uuid,
                                          shell=True, disposable=False)
    for _ in range(200):  # 425 until the sandbox is up and the main command has started
        try:
            spid = await client.operation_subprocess_create(
                spawned.uuid, "sh", args=["-c", "cat /work/m; echo sub > /work/s; hostname; ps | wc -l"])
            break
        except APIStatusError as exc:
            assert exc.status == 425, exc
            await asyncio.sleep(0.05)
    assert spid >= 2
    result = await _result_when_exited(client, spawned.uuid, spid)
    lines = result.stdout.value.split()
    assert lines[0] == "main" and lines[1] == "linuxkit", "it sees the instance's files and hostname"
    assert result.state.exit_code == 0
    sleeper = await client.operation_subprocess_create(spawned.uuid, "sleep", args=["30"])
    assert sleeper == spid + 1
    await asyncio.sleep(0.3)
    await client.operation_subprocess_kill(spawned.uuid, sleeper, signal="TERM")
    killed = await _result_when_exited(client, spawned.uuid, sleeper)
    assert killed.state.signal == 15
    url = f"/v1/operations/{spawned.uuid}/subprocesses"
    assert (await raw.post(url, json={"command": "true", "image": busybox.uuid})).status_code == 400
    assert (await raw.post(url, content=b"nope")).status_code == 400
    await client.operation_subprocess_kill(spawned.uuid, 1, signal="KILL")  # ends the instance
    final = await client.wait_operation(spawned.uuid)
    assert final.result.image, "the instance committed, with what the second process wrote"
    written = await raw.get(f"/v1/inspect/{final.result.image}/download", params={"path": "/work/s"})
    assert written.status_code == 200 and written.content == b"sub\n"
    with pytest.raises(ConflictError):
        await client.operation_subprocess_create(spawned.uuid, "true")
    with pytest.raises(NotFoundError):
        await client.operation_subprocess_create("00000000-0000-4000-8000-000000000000", "true")


async def _ready_instance(client: ContreeAsyncClient, busybox: Image) -> str:
    """A running instance whose main command has started (so another process can be created at once)."""
    spawned = await client.spawn_instance("echo ready; sleep 60", busybox.uuid, shell=True)
    await until_output(client, spawned.uuid, "ready")
    return spawned.uuid


async def _output_of(client: ContreeAsyncClient, op_uuid: str, spid: int, wanted: str) -> None:
    seen = ""
    async for event in client.follow_operation_events(op_uuid, spid=spid, timeout=30):
        if event.type == "stdout":
            seen += event.data.value
            if wanted in seen:
                return
    raise AssertionError(f"process {spid}: no output {wanted!r} (saw {seen!r})")


async def test_stdin_streams_to_another_process(client: ContreeAsyncClient, busybox: Image) -> None:
    op = await _ready_instance(client, busybox)
    spid = await client.operation_subprocess_create(op, "sh", args=["-c", "cat; echo eof"],
                                                    stdin=ClosableStreamRepr(value="first\n", close=False))
    await _output_of(client, op, spid, "first\n")  # cat read the create's chunk and waits for more
    await client.operation_subprocess_stdin(op, spid, "second\n", close=False)
    await client.operation_subprocess_stdin(op, spid, "dGhpcmQK", encoding="base64", close=False)
    await client.operation_subprocess_stdin(op, spid, "", close=True)
    result = await _result_when_exited(client, op, spid)
    assert text(result.stdout) == "first\nsecond\nthird\neof\n" and result.state.exit_code == 0
    with pytest.raises(APIStatusError) as late:  # it has exited: nobody reads any more
        await client.operation_subprocess_stdin(op, spid, "late")
    assert late.value.status in (409, 410)
    silent = await client.operation_subprocess_create(op, "sh", args=["-c", "cat; echo eof"],
                                                      stdin=ClosableStreamRepr(value="", close=False))
    await asyncio.sleep(0.3)
    live = await client.operation_subprocess(op, silent)
    assert live.state.exit_code == -1, "an empty first chunk with close=false keeps the pipe open"
    await client.operation_subprocess_stdin(op, silent, "only\n", close=True)
    assert text((await _result_when_exited(client, op, silent)).stdout) == "only\neof\n"
    closed = await client.operation_subprocess_create(op, "sleep", args=["30"])  # default close=true
    for _ in range(100):
        try:
            await client.operation_subprocess_stdin(op, closed, "x")
        except APIStatusError as exc:
            if exc.status == 425:  # not spawned yet
                await asyncio.sleep(0.05)
                continue
            assert exc.status == 409, exc
            break
    else:
        raise AssertionError("the write never got its 409")
    with pytest.raises(NotFoundError):
        await client.operation_subprocess_stdin(op, closed + 1, "x")
    await client.cancel_operation(op)


async def test_kill_right_after_create_is_too_early_not_missing(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                                                engine: Engine, busybox: Image) -> None:
    op = await _ready_instance(client, busybox)
    for _ in range(3):
        spid = await client.operation_subprocess_create(op, "sleep", args=["30"])
        url = f"/v1/operations/{op}/subprocesses/{spid}"
        first = await raw.delete(url, params={"signal": "KILL"})
        assert first.status_code in (204, 425), first.text  # as its GET says: starting, not missing
        if first.status_code == 425:
            assert first.headers["retry-after"] == "1"
            for _ in range(100):
                answer = await raw.delete(url, params={"signal": "KILL"})
                if answer.status_code == 204:
                    break
                assert answer.status_code == 425, answer.text
                await asyncio.sleep(0.02)
        killed = await _result_when_exited(client, op, spid)
        assert killed.state.signal == 9
    # The two states a kill meets, without the network's timing: right after the create the process is
    # "starting" (the route's 425); once its spawn is reported, its process group exists (a signal reaches it).
    spid = await engine.exec_process(op, {"command": "sleep", "args": ["30"]})
    run = engine.instance_run(op)
    assert run is not None and run.children[spid].starting
    while run.children[spid].starting:
        await asyncio.sleep(0.001)
    assert run.children[spid].signal(signal.SIGKILL), "the spawn was reported before its process group existed"
    assert (await _result_when_exited(client, op, spid)).state.signal == 9
    await client.cancel_operation(op)
