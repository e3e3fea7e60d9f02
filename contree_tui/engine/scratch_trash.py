"""Finished runs' scratch dirs, removed off the event loop's critical path.

Waiters already have their result when a run's dir is queued here. One thread job takes every dir queued
meanwhile: a thread hand-off per run cost the event loop more than the removal itself.
"""

from __future__ import annotations

import asyncio
import shutil


class ScratchTrash:
    def __init__(self, background: set[asyncio.Future[None]]) -> None:
        self._background = background  # the owner's close() waits for these
        self._trash: list[str] = []
        self.sweep: asyncio.Future[None] | None = None  # the thread job now emptying the list, if any

    def discard(self, path: str) -> None:
        self._trash.append(path)
        if self.sweep is None:
            self.sweep = asyncio.ensure_future(asyncio.to_thread(self._empty))
            self._background.add(self.sweep)
            self.sweep.add_done_callback(self._swept)

    async def emptied(self) -> None:
        """Until every dir queued so far is gone (tests count fds: rmtree holds dir fds while it runs)."""
        while self.sweep is not None:
            await self.sweep
            await asyncio.sleep(0)  # its done-callback clears (or replaces) self.sweep

    def _empty(self) -> None:
        while True:
            try:
                path = self._trash.pop(0)  # atomic; the loop thread only appends
            except IndexError:
                return
            shutil.rmtree(path, ignore_errors=True)

    def _swept(self, sweep: asyncio.Future[None]) -> None:
        self._background.discard(sweep)
        self.sweep = None
        if self._trash:  # queued after the thread found the list empty
            self.discard(self._trash.pop())
