"""Server-Sent Events for `GET /operations/{id}/events`: frames, keepalives and the in-band error frame.

The engine's `follow` is pumped into a queue by a task of its own, so the response can wait on the queue
with a timeout (and send `: keepalive`) without ever cancelling the follower mid-step.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from contree_tui.engine.engine import Engine
from contree_tui.engine.http.errors import log
from contree_tui.engine.models import Event

KEEPALIVE = b": keepalive\n\n"
_DONE = object()


class _Broken:
    def __init__(self, message: str) -> None:
        self.message = message


def frame(event: Event) -> bytes:
    data = json.dumps(event.as_dict(), separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()


def error_frame(message: str) -> bytes:
    line = " ".join(message.split()) or "stream failed"
    return f": stream ended with error, retry since last event id\n\nevent: sse_error\ndata: {line}\n\n".encode()


async def event_stream(engine: Engine, op_uuid: str, *, after: int, spid: int | None, follow: bool,
                       keepalive: float) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=256)

    async def pump() -> None:
        try:
            async for event in engine.follow(op_uuid, after=after, spid=spid, follow=follow):
                await queue.put(frame(event))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported in band, then the client resumes
            log.warning("event stream of %s broke: %s", op_uuid, exc)
            await queue.put(_Broken(f"{type(exc).__name__}: {exc}"))
        await queue.put(_DONE)

    task = asyncio.create_task(pump())
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield KEEPALIVE
                continue
            chunks = []
            while True:  # send what is already queued in one write
                if item is _DONE:
                    break
                if isinstance(item, _Broken):
                    chunks.append(error_frame(item.message))
                    item = _DONE
                    break
                chunks.append(item)  # type: ignore[arg-type]
                if queue.empty():
                    break
                item = queue.get_nowait()
            if chunks:
                yield b"".join(chunks)  # type: ignore[arg-type]
            if item is _DONE:
                return
    finally:
        task.cancel()
