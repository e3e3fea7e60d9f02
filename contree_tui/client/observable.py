"""A tiny observable value: the client's status objects (connection, sync) that a UI can watch.

Headless on purpose: no Textual, no threads. Values are set from the event loop's thread; subscribers are
plain callables run synchronously on every change (the TUI's would post a Message); `wait_for` lets async
code (and tests) await a state without polling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger("contree_tui.client")


class Observable(Generic[T]):
    """Holds the current value; tells subscribers about each new one (equal values are not re-announced)."""

    def __init__(self, value: T) -> None:
        self._value = value
        self._subscribers: list[Callable[[T], None]] = []
        self._waiters: list[tuple[Callable[[T], bool], asyncio.Future[T]]] = []
        self.history: list[T] = [value]  # every value it took, oldest first (bounded: the last 256)

    @property
    def value(self) -> T:
        return self._value

    def set(self, value: T) -> None:
        if value == self._value:
            return
        self._value = value
        self.history.append(value)
        del self.history[:-256]
        for callback in list(self._subscribers):
            try:
                callback(value)
            except Exception:  # a broken subscriber must not stop the sync or the connection
                log.exception("status subscriber failed")
        for predicate, future in list(self._waiters):
            if not future.done() and predicate(value):
                future.set_result(value)

    def subscribe(self, callback: Callable[[T], None]) -> Callable[[], None]:
        """Call `callback(value)` on each change; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    async def wait_for(self, predicate: Callable[[T], bool], timeout: float | None = None) -> T:
        """The first value (the current one included) for which `predicate` holds."""
        if predicate(self._value):
            return self._value
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._waiters.remove(entry)
