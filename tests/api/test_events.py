"""The SSE event log: frames, follow, filters, resume with Last-Event-Id, concurrency, cancel, 425."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from contree_client.exceptions import BadRequestError, NotFoundError
from contree_client.httpx import ContreeAsyncClient

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Image, Operation, OperationStatus
from tests.api.helpers import text

MISSING = "00000000-0000-4000-8000-000000000000"


def parse_frames(body: str) -> tuple[list[dict], list[str]]:
    """(normal frames as {id, event, data}, comment lines) from a raw SSE body."""
    frames, comments = [], []
    for block in body.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                comments.append(line)
            elif line:
                name, _, value = line.partition(": ")
                fields[name] = value
        if "data" in fields and "id" in fields:  # an `sse_error` frame has no id and plain-text data
            frames.append({"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])})
    return frames, comments


async def test_follow_to_completion_and_the_full_log_afterwards(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                                               busybox: Image) -> None:
    spawned = await client.spawn_instance("echo one; sleep 0.3; echo two", busybox.uuid, shell=True)
    followed = [event async for event in client.follow_operation_events(spawned.uuid)]
    types = [e.type for e in followed]
    assert types[0] == "init" and types[-1] == "completion" and "spawn" in types and "exit" in types
    assert [e.id for e in followed] == list(range(1, len(followed) + 1))
    assert "".join(e.data.value for e in followed if e.type == "stdout") == "one\ntwo\n"
    assert followed[-1].data.status == "SUCCESS" and followed[-1].spid is ...
    answer = await raw.get(f"/v1/operations/{spawned.uuid}/events")  # follow=0 on a finished op: everything
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["cache-control"] == "no-cache"
    frames, _ = parse_frames(answer.text)
    assert [f["id"] for f in frames] == [e.id for e in followed]
    assert all(f["event"] == f["data"]["type"] for f in frames)
    again = [event async for event in client.iter_operation_events(spawned.uuid, follow=True)]
    assert [e.id for e in again] == [e.id for e in followed]  # follow on a finished op is a no-op
    main_only = [e async for e in client.iter_operation_events(spawned.uuid, spid=1)]
    assert {e.spid for e in main_only} <= {1, ...} and main_only[-1].type == "completion"
    tail = [e async for e in client.iter_operation_events(spawned.uuid, since=followed[-3].id)]
    assert [e.id for e in tail] == [e.id for e in followed[-2:]]
    op = await client.wait_operation(spawned.uuid)
    assert text(op.metadata.result.stdout) == "one\ntwo\n"


async def test_reconnect_with_last_event_id_loses_and_duplicates_nothing(client: ContreeAsyncClient,
                                                                         raw: httpx.AsyncClient,
                                                                         busybox: Image) -> None:
    script = "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo line$i; sleep 0.02; done"
    spawned = await client.spawn_instance(script, busybox.uuid, shell=True)
    url = f"/v1/operations/{spawned.uuid}/events"
    seen: list[dict] = []
    buffer = ""
    async with raw.stream("GET", url, params={"follow": "1"}) as response:
        async for chunk in response.aiter_text():
            buffer += chunk
            *complete, buffer = buffer.split("\n\n")
            for frame in parse_frames("\n\n".join(complete) + "\n\n")[0]:
                if sum(f["event"] == "stdout" for f in seen) < 5:
                    seen.append(frame)  # frames after the 5th stdout are lost with the connection
            if sum(f["event"] == "stdout" for f in seen) >= 5:
                break  # drop the connection mid-stream
    assert seen[-1]["event"] != "completion"
    async with raw.stream("GET", url, params={"follow": "1"},
                          headers={"Last-Event-Id": str(seen[-1]["id"])}) as response:
        rest, _ = parse_frames((await response.aread()).decode())
    ids = [f["id"] for f in seen + rest]
    assert ids == list(range(1, ids[-1] + 1)) and rest[-1]["event"] == "completion"
    out = "".join(f["data"]["data"]["value"] for f in seen + rest if f["event"] == "stdout")
    assert out == "".join(f"line{i}\n" for i in range(1, 21))
    full, _ = parse_frames((await raw.get(url)).text)
    assert [f["id"] for f in full] == ids
    header_wins = parse_frames((await raw.get(url, params={"since": "0"}, headers={"Last-Event-Id": "3"})).text)[0]
    assert header_wins[0]["id"] == 4


async def test_twenty_runs_streamed_concurrently(client: ContreeAsyncClient, busybox: Image) -> None:
    spawned = [await client.spawn_instance(f"sleep 0.2; echo run-{i}", busybox.uuid, shell=True, disposable=True)
               for i in range(20)]

    async def follow(op_uuid: str) -> str:
        events = [e async for e in client.follow_operation_events(op_uuid, timeout=60)]
        assert events[-1].type == "completion" and events[-1].data.status == "SUCCESS"
        return "".join(e.data.value for e in events if e.type == "stdout")

    outputs = await asyncio.gather(*(follow(s.uuid) for s in spawned))
    assert outputs == [f"run-{i}\n" for i in range(20)]


async def test_cancel_mid_run_ends_the_stream_with_cancelled(client: ContreeAsyncClient, busybox: Image) -> None:
    spawned = await client.spawn_instance("echo started; sleep 30", busybox.uuid, shell=True)
    events = []
    async for event in client.follow_operation_events(spawned.uuid, timeout=30):
        events.append(event)
        if event.type == "stdout":
            await client.cancel_operation(spawned.uuid)
    assert events[-1].type == "completion" and events[-1].data.status == "CANCELLED"
    assert (await client.get_operation_status(spawned.uuid)).status.value == "CANCELLED"


async def test_keepalive_comments_while_idle(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                             busybox: Image) -> None:
    spawned = await client.spawn_instance("sleep 0.7", busybox.uuid, shell=True)
    async with raw.stream("GET", f"/v1/operations/{spawned.uuid}/events", params={"follow": ""}) as response:
        body = (await response.aread()).decode()
    frames, comments = parse_frames(body)
    assert ": keepalive" in comments and frames[-1]["event"] == "completion"


async def test_too_early_unknown_and_bad_parameters(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                                    engine: Engine, busybox: Image) -> None:
    queued = Operation(uuid="11111111-2222-4333-8444-555555555555", kind="instance",
                       status=OperationStatus.PENDING, created_at=time.time(), image_uuid=busybox.uuid,
                       request={"image": busybox.uuid, "command": "true", "timeout": 10})
    engine.store.add_operation(queued)  # an operation accepted but not started: its log does not exist yet
    answer = await raw.get(f"/v1/operations/{queued.uuid}/events")
    assert answer.status_code == 425 and answer.headers["retry-after"] == "1" and answer.json()["status"] == 425
    status = await client.get_operation_status(queued.uuid)
    assert status.status.value == "PENDING" and status.duration == 0.0
    with pytest.raises(NotFoundError):
        [e async for e in client.iter_operation_events(MISSING)]
    done = await client.spawn_instance("true", busybox.uuid, shell=True)
    for params, headers in (({"spid": "x"}, {}), ({"since": "-1"}, {}), ({"follow": "yes please"}, {}),
                            ({}, {"Last-Event-Id": "abc"})):
        answer = await raw.get(f"/v1/operations/{done.uuid}/events", params=params, headers=headers)
        assert answer.status_code == 400, params
    with pytest.raises(BadRequestError):
        [e async for e in client.iter_operation_events("not-a-uuid")]


async def test_a_broken_stream_ends_with_an_sse_error_frame_and_resumes(client: ContreeAsyncClient,
                                                                        raw: httpx.AsyncClient, engine: Engine,
                                                                        busybox: Image,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    spawned = await client.spawn_instance("echo a; sleep 0.3; echo b", busybox.uuid, shell=True)
    url = f"/v1/operations/{spawned.uuid}/events"
    body = ""
    async with raw.stream("GET", url, params={"follow": "1"}) as response:
        async for chunk in response.aiter_text():
            body += chunk
            if "event: stdout" in body and "broken" not in body:
                body += "broken"
                monkeypatch.setattr(engine.store, "events", _broken_events)
    frames, comments = parse_frames(body.replace("broken", ""))
    assert ": stream ended with error, retry since last event id" in comments
    assert "event: sse_error\ndata: RuntimeError: the log is unreadable" in body
    monkeypatch.undo()
    rest = [e async for e in client.follow_operation_events(spawned.uuid, last_event_id=frames[-1]["id"])]
    ids = [f["id"] for f in frames] + [e.id for e in rest]
    assert ids == list(range(1, ids[-1] + 1)) and rest[-1].type == "completion"


def _broken_events(*args: object, **kwargs: object) -> list[object]:
    raise RuntimeError("the log is unreadable")
