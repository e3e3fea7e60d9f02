"""Server-Sent Events for `GET /operations/{id}/events`: frames, keepalives, the in-band error frame, and the
response that sends them.

The stream is written by a plain ASGI response rather than Starlette's StreamingResponse, whose task group
and disconnect-listener task per request were a tenth of the engine's work for a trivial run. A client that
goes away is noticed at the next write, a keepalive at the latest.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from contree_tui.engine.engine import Engine
from contree_tui.engine.http.errors import log
from contree_tui.engine.models import Event

KEEPALIVE = b": keepalive\n\n"
HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
           (b"x-accel-buffering", b"no")]


def frame(event: Event) -> bytes:
    data = json.dumps(event.as_dict(), separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()


def error_frame(message: str) -> bytes:
    line = " ".join(message.split()) or "stream failed"
    return f": stream ended with error, retry since last event id\n\nevent: sse_error\ndata: {line}\n\n".encode()


async def event_stream(engine: Engine, op_uuid: str, *, after: int, spid: int | None, follow: bool,
                       keepalive: float) -> AsyncIterator[bytes]:
    """The frames of the events written together as one chunk (one write), keepalives while idle."""
    try:
        async for batch in engine.follow_batches(op_uuid, after=after, spid=spid, follow=follow, idle=keepalive):
            yield b"".join(frame(event) for event in batch) if batch else KEEPALIVE
    except Exception as exc:  # noqa: BLE001 - reported in band, then the client resumes
        log.warning("event stream of %s broke: %s", op_uuid, exc)
        yield error_frame(f"{type(exc).__name__}: {exc}")


class EventStreamResponse:
    """200 text/event-stream with `chunks` as its body, until they end or the client goes away."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        gone = asyncio.ensure_future(_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            async for chunk in self.chunks:
                if gone.done():
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the connection broke under a write
            return
        finally:
            gone.cancel()
            await self.chunks.aclose()  # type: ignore[attr-defined]


async def _disconnect(receive: Callable[[], Awaitable[Any]]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
