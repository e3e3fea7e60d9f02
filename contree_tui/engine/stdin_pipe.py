"""The stdin of a process in an instance (the main one, spid 1, or an exec'd one, spid ≥ 2), as the API sees it.

The spawn (or exec) request's `stdin` is its first chunk; with `close: false` the pipe stays open and
`POST …/subprocesses/{spid}/stdin` writes more until a write closes it (EOF). Every chunk is recorded as
`stdin` events of that spid (capped like stdout; delivery to the process is never capped).
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

from contree_tui.engine.output import CappedStream, encode_stream

if TYPE_CHECKING:
    from contree_tui.engine.event_log import EventSink


class StdinPipe:
    def __init__(self, events: EventSink, op_uuid: str, spid: int, truncate_at: int, *, keep_open: bool) -> None:
        self.events = events
        self.op_uuid = op_uuid
        self.spid = spid
        self.keep_open = keep_open  # started with stdin.close=false: later writes are accepted
        self.fd: int | None = None
        self.busy = False  # a write is in progress (in a thread): it closes the fd itself if asked to
        self.lock = asyncio.Lock()  # the spec: "serialized requests are ordered"
        self._log = CappedStream("stdin", truncate_at)
        self._loop = asyncio.get_running_loop()

    @property
    def closed(self) -> bool:
        return self.fd is None

    def attach(self, fd: int | None) -> None:
        self.fd = fd

    def write(self, data: bytes, *, close: bool) -> None:
        """Write all of `data` (blocking: call it from a thread), then close if asked; BrokenPipeError if the
        pipe is closed already, OSError if the reader went away (the pipe is closed then)."""
        fd = self.fd
        if fd is None:
            raise BrokenPipeError("stdin is closed")
        chunks = self._log.feed(data)
        if chunks:
            self._loop.call_soon_threadsafe(
                self.events.emit_many, self.op_uuid, [("stdin", self.spid, encode_stream(c)) for c in chunks])
        self.busy = True
        os.set_blocking(fd, True)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            close = True  # the reader is gone: nothing more can be delivered
            raise
        finally:
            self.busy = False
            if close:
                self.close()

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    async def feed_first(self, data: bytes) -> None:
        """The request's own chunk; the pipe is closed after it unless the request said close=false."""
        close = not self.keep_open
        if data:
            try:
                await asyncio.to_thread(self.write, data, close=close)
            except OSError:
                self.close()
        elif close:
            self.close()

    def close_unless_busy(self) -> None:
        """The process is gone: close our end, unless a writer in progress will (it holds the fd)."""
        if not self.busy:
            self.close()
