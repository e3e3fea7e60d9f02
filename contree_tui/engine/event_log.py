"""Operations' event logs and status rows as the runs write them: batched per loop tick into the store,
followed by waiters until `completion`.

Runs (instance.py, exec_process.py) get an EventSink, not the Engine: they only ever record events, and
with the sink the imports point one way (engine → runs → event_log → store).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol

from contree_tui.engine.models import Event
from contree_tui.engine.store import Store, iso_now

EventItem = tuple[str, int | None, dict[str, Any]]  # type, spid, data


class EventSink(Protocol):
    """Where a run records its events."""

    def emit(self, op_uuid: str, type_: str, spid: int | None, data: dict[str, Any]) -> None: ...

    def emit_many(self, op_uuid: str, items: list[EventItem]) -> None: ...


class EventLog:
    """The EventSink the engine hands its runs, over the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Set (and replaced) when an operation's new events are in the store; followers wait on it. An
        # operation has one from `begin` to `end`: while it is live, followers wait for more.
        self._changed: dict[str, asyncio.Event] = {}
        self._unwritten: list[tuple[str, list[Event]]] = []  # events emitted this loop tick
        self._unwritten_updates: list[tuple[str, dict[str, Any]]] = []  # operation rows changed this tick
        self._next_event: dict[str, int] = {}

    def begin(self, op_uuid: str) -> None:
        """A new operation, live: its first event is 1."""
        self._next_event[op_uuid] = 1
        self._changed[op_uuid] = asyncio.Event()

    def end(self, op_uuid: str) -> None:
        """The operation has written its last event (followers stop once they have read them)."""
        self._changed.pop(op_uuid, None)
        self._next_event.pop(op_uuid, None)

    def is_live(self, op_uuid: str) -> bool:
        return op_uuid in self._changed

    def emit(self, op_uuid: str, type_: str, spid: int | None, data: dict[str, Any]) -> None:
        self.emit_many(op_uuid, [(type_, spid, data)])

    def emit_many(self, op_uuid: str, items: list[EventItem]) -> None:
        """Record events. They are written in one transaction per loop tick (a flood of output chunks
        costs one commit, not one each); followers wake once they are in the store."""
        next_id = self._next_event.get(op_uuid) or self.store.last_event_id(op_uuid) + 1
        events = []
        for type_, spid, data in items:
            events.append(Event(next_id, iso_now(), type_, spid, data))
            next_id += 1
        self._next_event[op_uuid] = next_id
        self._schedule_flush()
        self._unwritten.append((op_uuid, events))

    def update_operation(self, op_uuid: str, **fields: Any) -> None:
        """Change an operation's row; written with this tick's events, in the same transaction."""
        self._schedule_flush()
        self._unwritten_updates.append((op_uuid, fields))

    def _schedule_flush(self) -> None:
        if not self._unwritten and not self._unwritten_updates:
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        batch, self._unwritten = self._unwritten, []
        updates, self._unwritten_updates = self._unwritten_updates, []
        if not batch and not updates:
            return
        self.store.add_events_batch(batch, updates)
        for op_uuid in {op for op, _ in batch}:
            flag = self._changed.get(op_uuid)
            if flag is not None:
                flag.set()
                self._changed[op_uuid] = asyncio.Event()

    def emit_completion(self, op_uuid: str, status: str, result_image: str | None, error: str | None,
                        size: int, elapsed: float) -> None:
        self.emit(op_uuid, "completion", None, {
            "status": status, "result_image_uuid": result_image, "error": error,
            "duration_ms": int(elapsed * 1000), "image_size_bytes": size})
        self.flush()  # the log is complete before anyone learns the operation ended

    async def follow_batches(self, op_uuid: str, *, after: int = 0, spid: int | None = None, follow: bool = True,
                             idle: float | None = None) -> AsyncIterator[list[Event]]:
        """The operation's events after `after` as the store hands them out (the events written together,
        in one list); with follow, waits for more until `completion`; with `idle`, an empty list after that
        many seconds without any (an SSE keepalive is due)."""
        self.store.get_operation(op_uuid)
        while True:
            flag = self._changed.get(op_uuid)  # taken before reading: an event landing after the read sets it
            events = self.store.events(op_uuid, after=after, spid=spid)
            if not events and follow and flag is not None:
                try:
                    await asyncio.wait_for(flag.wait(), idle)  # Event.wait is safe to cancel
                except TimeoutError:
                    yield []
                continue
            for index, event in enumerate(events):
                if event.type == "completion":
                    yield events[:index + 1]
                    return
            if events:
                yield events
                after = events[-1].id
            if not follow or (not events and not self.is_live(op_uuid)):
                return
