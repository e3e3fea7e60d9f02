"""The TUI's one door to Contree: a thin adapter over the client layer (connection + contree-client) that
speaks the TUI's records (model.py). Widgets never see contree-client types.

A `Backend` is whatever provides these calls: `ContreeBackend` is the real one; tests pass a frozen one for
deterministic snapshots. When client/lineage.py and client/position.py land, `lineage()` delegates there.

Every failure leaves as `BackendError`, whose message is the reason a toast shows as it stands.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import EllipsisType
from typing import Any, Protocol, TypeVar

from contree_client.exceptions import APIConnectionError, APIStatusError
from contree_client.models import (
    EventDataCompletion,
    EventDataExit,
    EventDataStream,
    OperationInstanceMetadata,
    OperationResponse,
    OperationStatus,
    OperationSummary,
)

from contree_tui.client.connection import Connection, ConnectionProblem, open_connection
from contree_tui.client.observable import Observable
from contree_tui.client.reconnect import ConnectionState, describe_failure
from contree_tui.tui.model import Lineage, Operation, Snapshot, Stream

T = TypeVar("T")

COMMAND_LOOKUPS = 8  # concurrent operation fetches when labelling tree nodes


class BackendError(Exception):
    """A failed call; `str()` says why, for the user."""


@dataclass(frozen=True)
class Output:
    stream: Stream
    text: str


@dataclass(frozen=True)
class Exited:
    code: int | None
    signal: int | None = None
    timed_out: bool = False


@dataclass(frozen=True)
class Completed:
    status: OperationStatus
    result: str | None
    error: str | None = None
    duration: float | None = None


OpEvent = Output | Exited | Completed


class Backend(Protocol):
    name: str  # "embedded", a profile name, or "environment"
    status: Observable[ConnectionState]

    async def lineage(self) -> Lineage: ...

    async def recent_operations(self, limit: int = 30) -> list[Operation]: ...

    async def commands(self, operation_uuids: list[str]) -> dict[str, str]: ...

    async def run(self, command: str, image: str, *, disposable: bool = False) -> Operation: ...

    def follow(self, operation_uuid: str, after: int | None = None) -> AsyncIterator[tuple[int, OpEvent]]: ...

    async def operation(self, uuid: str) -> Operation: ...

    async def aclose(self) -> None: ...


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, BackendError | ConnectionProblem):
        return str(exc)
    if isinstance(exc, APIStatusError):
        return f"the server answered HTTP {exc.status}: {exc.error}"
    if isinstance(exc, APIConnectionError):
        return describe_failure(exc)
    if isinstance(exc, TimeoutError):
        return f"timed out: {exc}" if str(exc) else "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _value(value: T | EllipsisType | None) -> T | None:
    return None if value is ... else value  # type: ignore[return-value]


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def operation_from_summary(op: OperationSummary | OperationResponse, command: str = "") -> Operation:
    status = _value(op.status) or OperationStatus.PENDING
    return Operation(uuid=str(op.uuid), command=command, image=_value(op.image_uuid), status=status,
                     result=_value(op.result_image_uuid), duration=_value(op.duration), error=_value(op.error),
                     created_at=parse_time(_value(op.created_at)))


def operation_from_response(op: OperationResponse) -> Operation:
    meta = _value(op.metadata)
    if isinstance(meta, OperationInstanceMetadata):
        found = operation_from_summary(op, meta.command)
        found.disposable = bool(_value(meta.disposable))
        result = _value(meta.result)
        state = _value(result.state) if result else None
        found.exit_code = _value(state.exit_code) if state else None
        return found
    tag = _value(getattr(meta, "tag", None)) if meta else None
    return operation_from_summary(op, f"import {tag}" if tag else "import")


class ContreeBackend:
    """The real thing, over a verified `Connection`. Requests go through `Connection.call` (reconnect with
    backoff, visible in `status`); the event stream resumes by itself from the last event id."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.client = connection.client
        self.name = connection.target.name
        self.status = connection.status
        self._commands: dict[str, str] = {}  # operation uuid -> command: never changes once made

    async def _call(self, fn: Callable[[], Awaitable[T]], *, idempotent: bool = True) -> T:
        try:
            return await self.connection.call(fn, idempotent=idempotent)
        except (ConnectionProblem, APIStatusError, APIConnectionError, TimeoutError) as exc:
            raise BackendError(describe_error(exc)) from exc

    async def lineage(self) -> Lineage:
        async def images() -> list[Any]:
            return [image async for image in self.client.iter_images()]

        async def operations() -> list[OperationSummary]:
            return [op async for op in self.client.iter_operations(kind="instance")]

        found_images, found_ops = await asyncio.gather(self._call(images), self._call(operations))
        ops = [operation_from_summary(op) for op in found_ops]
        by_uuid = {op.uuid: op for op in ops}
        snapshots = []
        for image in found_images:
            producer = by_uuid.get(_value(image.operation_uuid) or "")
            snapshots.append(Snapshot(uuid=str(image.uuid), parent=producer.image if producer else None,
                                      tag=_value(image.tag), created_at=parse_time(_value(image.created_at)),
                                      operation=_value(image.operation_uuid)))
        return Lineage(snapshots, ops)

    async def commands(self, operation_uuids: list[str]) -> dict[str, str]:
        """The command each operation ran (fetched once per operation, a few at a time)."""
        missing = [u for u in dict.fromkeys(operation_uuids) if u not in self._commands]
        limit = asyncio.Semaphore(COMMAND_LOOKUPS)

        async def one(uuid: str) -> None:
            async with limit:
                self._commands[uuid] = (await self.operation(uuid)).command

        await asyncio.gather(*(one(u) for u in missing))
        return {u: self._commands[u] for u in operation_uuids if u in self._commands}

    async def recent_operations(self, limit: int = 30) -> list[Operation]:
        found = await self._call(lambda: self.client.list_operations(limit=limit, kind="instance"))
        gate = asyncio.Semaphore(COMMAND_LOOKUPS)

        async def detail(uuid: str) -> Operation:
            async with gate:
                return await self.operation(uuid)

        ops = await asyncio.gather(*(detail(str(op.uuid)) for op in found))
        return sorted(ops, key=lambda op: (op.created_at.timestamp() if op.created_at else 0.0, op.uuid))

    async def operation(self, uuid: str) -> Operation:
        op = operation_from_response(await self._call(lambda: self.client.get_operation_status(uuid)))
        self._commands[uuid] = op.command
        return op

    async def run(self, command: str, image: str, *, disposable: bool = False) -> Operation:
        # Not idempotent: retried only when the request never left, so a run is never spawned twice.
        spawned = await self._call(lambda: self.client.spawn_instance(command, image, shell=True,
                                                                        disposable=disposable),
                                   idempotent=False)
        uuid = str(spawned.uuid)
        self._commands[uuid] = command
        return Operation(uuid=uuid, command=command, image=image, status=OperationStatus.PENDING,
                         disposable=disposable)

    async def follow(self, operation_uuid: str, after: int | None = None) -> AsyncIterator[tuple[int, OpEvent]]:
        """The operation's output and outcome, live until it completes (a finished one's log is replayed)."""
        try:
            async for event in self.client.follow_operation_events(operation_uuid, last_event_id=after):
                data = event.data
                if event.type in ("stdout", "stderr") and isinstance(data, EventDataStream):
                    yield event.id, Output(Stream(event.type), data.as_text())
                elif event.type == "exit" and isinstance(data, EventDataExit) and event.spid == 1:
                    yield event.id, Exited(data.code, None if data.signal == -1 else data.signal,
                                           bool(_value(data.timed_out)))
                elif event.type == "completion" and isinstance(data, EventDataCompletion):
                    yield event.id, Completed(data.status, _value(data.result_image_uuid), _value(data.error),
                                              data.duration_ms / 1000)
        except (APIStatusError, APIConnectionError, TimeoutError) as exc:
            raise BackendError(f"the log of {operation_uuid[:8]} broke off: {describe_error(exc)}") from exc

    async def aclose(self) -> None:
        await self.connection.aclose()


async def open_backend(profile: str | None = None, state_dir: str | Path | None = None, *,
                       status: Observable[ConnectionState] | None = None) -> ContreeBackend:
    """Resolve and open the target (the embedded engine by default, started on demand)."""
    try:
        return ContreeBackend(await open_connection(profile, state_dir=state_dir, status=status))
    except ConnectionProblem as exc:
        raise BackendError(str(exc)) from exc
