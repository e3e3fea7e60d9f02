"""Spawning and following operations: the spawn echo, status shapes, listing, cancel, and malformed bodies."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from contree_client.exceptions import BadRequestError, ConflictError, NotFoundError
from contree_client.httpx import ContreeAsyncClient
from contree_client.models import ClosableStreamRepr

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Image
from tests.api.helpers import run, text

MISSING = "00000000-0000-4000-8000-000000000000"
RESOURCE_FIELDS = {"block_input", "block_output", "cost", "elapsed_time", "involuntary_switches", "max_rss",
                   "monotonic_time", "page_faults", "page_faults_io", "shared_memory", "signals", "swaps",
                   "system_cpu_time", "unshared_memory", "user_cpu_time", "voluntary_switches"}
STATE_FIELDS = {"exit_code", "pid", "signal", "timed_out", "core_dump", "stopped", "continued"}


async def test_spawn_answers_201_with_location_and_the_parsed_request(raw: httpx.AsyncClient,
                                                                      busybox: Image) -> None:
    answer = await raw.post("/v1/instances", json={"image": "tag:busybox:latest", "command": "echo hi",
                                                   "shell": True, "stdin": {"value": "", "truncated": False},
                                                   "some_future_field": 1})
    assert answer.status_code == 201
    body = answer.json()
    assert answer.headers["location"] == f"/v1/operations/{body['uuid']}"
    assert body["image"] == busybox.uuid and body["command"] == "echo hi" and body["result"] is None
    assert body["args"] == [] and body["env"] == {} and body["cwd"] == "" and body["hostname"] == "linuxkit"
    assert body["disposable"] is False and body["timeout"] == 600 and body["truncate_output_at"] == 1 << 20
    assert body["stdin"] == {"value": "", "encoding": "ascii", "close": True}
    assert body["networking"] == {"enabled": True} and body["files"] == {}


async def test_status_of_a_finished_run_is_complete(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                                    busybox: Image) -> None:
    op = await run(client, busybox.uuid, "echo out; echo err >&2; echo data > /f; exit 3", env={"A": "1"},
                   timeout=30)
    assert op.status.value == "SUCCESS" and op.kind == "instance" and op.error is None
    assert isinstance(op.duration, float) and op.duration > 0
    assert op.image_uuid == busybox.uuid and op.result_image_uuid not in (None, busybox.uuid)
    assert op.result.image == op.result_image_uuid and op.result.tag is None
    assert op.image_size > 0 and op.consumed_cpu is not None and op.consumed_memory is not None
    result = op.metadata.result
    assert text(result.stdout) == "out\n" and text(result.stderr) == "err\n"
    assert result.state.exit_code == 3 and result.state.signal == -1 and not result.state.timed_out
    assert op.metadata.env == {"A": "1"} and op.metadata.timeout == 30 and op.metadata.image == busybox.uuid
    body = (await raw.get(f"/v1/operations/{op.uuid}")).json()
    assert set(body["metadata"]["result"]["resources"]) == RESOURCE_FIELDS
    assert set(body["metadata"]["result"]["state"]) == STATE_FIELDS
    assert "retry-after" not in (await raw.get(f"/v1/operations/{op.uuid}")).headers
    same = await run(client, op.result_image_uuid, "cat /f")
    assert same.result_image_uuid == op.result_image_uuid  # nothing changed: the source image comes back
    disposable = await run(client, busybox.uuid, "echo x > /y", disposable=True)
    assert disposable.result_image_uuid is None and disposable.image_size is None


async def test_running_status_has_retry_after_and_inflight_output(client: ContreeAsyncClient,
                                                                  raw: httpx.AsyncClient, busybox: Image) -> None:
    spawned = await client.spawn_instance("echo partial; sleep 30", busybox.uuid, shell=True)
    async for event in client.follow_operation_events(spawned.uuid):
        if event.type == "stdout":
            break
    answer = await raw.get(f"/v1/operations/{spawned.uuid}")
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["status"] == "EXECUTING" and answer.json()["metadata"]["result"] is None
    assert isinstance(answer.json()["duration"], float)
    live = await client.get_operation_status(spawned.uuid, inflight=True)
    assert text(live.metadata.result.stdout) == "partial\n"
    assert live.metadata.result.state.exit_code == -1 and live.metadata.result.state.signal == -1
    await client.cancel_operation(spawned.uuid)


async def test_list_operations_is_a_bare_array_with_filters(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                                            busybox: Image) -> None:
    first = await run(client, busybox.uuid, "true")
    second = await run(client, busybox.uuid, "exit 0", disposable=True)
    answer = await raw.get("/v1/operations")
    assert isinstance(answer.json(), list)
    listed = await client.list_operations()
    assert [o.uuid for o in listed] == [second.uuid, first.uuid]  # newest first
    assert listed[0].duration is not None and listed[0].status.value == "SUCCESS"
    assert [o.uuid for o in await client.list_operations(limit=1, offset=1)] == [first.uuid]
    assert len(await client.list_operations(status="SUCCESS", kind="instance", since="1h")) == 2
    assert await client.list_operations(status="FAILED") == []
    assert await client.list_operations(kind="image_import") == []
    assert await client.list_operations(until="1h") == []
    for bad in ({"status": "RUNNING"}, {"kind": "vm"}, {"limit": "2000"}, {"since": "soon"}):
        assert (await raw.get("/v1/operations", params=bad)).status_code == 400, bad


async def test_cancel_ends_a_run_and_conflicts_once_ended(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                                          busybox: Image) -> None:
    spawned = await client.spawn_instance("sleep 30", busybox.uuid, shell=True)
    answer = await raw.delete(f"/v1/operations/{spawned.uuid}")
    assert answer.status_code == 202
    op = await client.wait_operation(spawned.uuid, timeout=10)
    assert op.status.value == "CANCELLED" and op.result_image_uuid is None
    with pytest.raises(ConflictError):
        await client.cancel_operation(spawned.uuid)
    with pytest.raises(NotFoundError):
        await client.cancel_operation(MISSING)


async def test_unknown_and_malformed(client: ContreeAsyncClient, raw: httpx.AsyncClient, busybox: Image) -> None:
    with pytest.raises(NotFoundError):
        await client.get_operation_status(MISSING)
    with pytest.raises(BadRequestError):
        await client.get_operation_status("not-a-uuid")
    # The spec lists 400/401/403 for POST /instances: an image it does not know is a bad request (no official
    # client tells a spawn's 404 from its 400; contree-sdk's oci() looks a tag up with GET /inspect first)
    with pytest.raises(BadRequestError, match="no image"):
        await client.spawn_instance("true", MISSING)
    with pytest.raises(BadRequestError, match="no image tagged 'no-such-tag'"):
        await client.spawn_instance("true", "tag:no-such-tag")
    bad_bodies = [
        b"{", b"[]", b"null", b"", b'"text"', b'{"image": 5, "command": "true"}',
        json.dumps({"image": busybox.uuid}).encode(), json.dumps({"image": busybox.uuid, "command": 1}).encode(),
        json.dumps({"image": busybox.uuid, "command": "true", "args": "x"}).encode(),
        json.dumps({"image": busybox.uuid, "command": "true", "env": {"A": 1}}).encode(),
        json.dumps({"image": busybox.uuid, "command": "true", "timeout": "long"}).encode(),
        json.dumps({"image": busybox.uuid, "command": "true", "timeout": 99999}).encode(),
        json.dumps({"image": busybox.uuid, "command": "true", "cwd": "relative"}).encode(),
        json.dumps({"image": busybox.uuid, "command": "true", "files": {"/x": {"uuid": "nope"}}}).encode(),
        json.dumps({"image": busybox.uuid, "command": "true", "stdin": {"value": "!", "encoding": "base64"}}).encode(),
        json.dumps({"image": busybox.uuid, "command": "true", "uid": -1}).encode(),
        json.dumps({"image": busybox.uuid, "command": "true", "truncate_output_at": 1 << 40}).encode(),
        json.dumps({"image": busybox.uuid, "command": "true", "networking": []}).encode(),
        b'{"image": "' + busybox.uuid.encode() + b'", "command": "true", "timeout": Infinity}',
    ]
    for body in bad_bodies:
        answer = await raw.post("/v1/instances", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["status"] == 400 and "Traceback" not in answer.text
    with pytest.raises(BadRequestError):
        await client.spawn_instance("true", busybox.uuid, stdin=ClosableStreamRepr(value="%%", encoding="base64"))
    assert (await raw.get("/v1/no/such/route")).json() == {"error": "Not Found", "status": 404}
    assert (await raw.put("/v1/operations")).status_code == 405


async def test_an_unexpected_error_is_a_500_without_internals(raw: httpx.AsyncClient, engine: Engine,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**kwargs: object) -> None:
        raise RuntimeError("/var/lib/secret/host/path exploded")

    monkeypatch.setattr(engine.store, "list_images", broken)
    answer = await raw.get("/v1/images")
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal server error (RuntimeError)", "status": 500}
    await asyncio.sleep(0)


async def test_a_timeout_is_a_result_not_a_failure(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                                   engine: Engine, busybox: Image) -> None:
    """As the hosted Contree reports it (contree-mcp's errors guide): SUCCESS, `state.timed_out`, the kill's
    exit information and the output so far; a kept run keeps what it wrote before the deadline."""
    op = await run(client, busybox.uuid, "echo started > /kept; echo started; sleep 30", timeout=1,
                   disposable=False)
    assert op.status.value == "SUCCESS" and op.error is None
    state = op.metadata.result.state
    assert state.timed_out is True and state.exit_code == -1 and state.signal == 9
    assert text(op.metadata.result.stdout) == "started\n"
    assert op.result.image and op.result.image != busybox.uuid
    kept = await raw.get(f"/v1/inspect/{op.result.image}/download", params={"path": "/kept"})
    assert kept.status_code == 200 and kept.content == b"started\n"
    events = engine.store.events(op.uuid)
    assert [(e.data["timed_out"], e.data["signal"]) for e in events if e.type == "exit"] == [(True, 9)]
    assert [e.data["reason"] for e in events if e.type == "shutdown"] == ["timeout"]
    assert events[-1].data["status"] == "SUCCESS"
