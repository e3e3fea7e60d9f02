"""The TUI's one door to Contree: a thin adapter over the client layer that speaks the TUI's records
(model.py). Widgets never see contree-client types.

`ContreeBackend` is the real one: the image tree comes from client/lineage.py (cached per target, refreshed
incrementally), an operation's events from client/operations.py (resumed from the last event id), and the
working snapshot is client/position.py's, kept per folder and target, so the TUI and the headless CLI
(`contree-tui rollback`, `run`, …) move the same position. Tests pass a frozen backend instead.

Every failure leaves as `BackendError` (or the position's PositionError), whose message is the reason a toast
shows as it stands.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from contree_client.exceptions import APIConnectionError, APIStatusError
from contree_client.models import (
    EventDataCompletion,
    EventDataExit,
    EventDataStream,
    InstanceNetworking,
    OperationStatus,
)

from contree_tui.client.connection import Connection, ConnectionProblem, open_connection
from contree_tui.client.image_files import ImageFiles, InspectError
from contree_tui.client.lineage import Lineage as ClientLineage
from contree_tui.client.lineage import LineageTree
from contree_tui.client.observable import Observable
from contree_tui.client.operations import FULL_OUTPUT, EventCursor, follow_events
from contree_tui.client.position import HistoryEntry, PositionError, WorkingPosition
from contree_tui.client.reconnect import ConnectionState, describe_failure
from contree_tui.client.records import IMPORT_KIND, ImageRecord, OperationRecord
from contree_tui.client.sync import SyncError
from contree_tui.tui.backend_error import BackendError
from contree_tui.tui.folder_sync import FolderSync
from contree_tui.tui.model import Lineage, Operation, Snapshot, Stream
from contree_tui.tui.snapshot_files import ClientSnapshotFiles, SnapshotFiles
from contree_tui.tui.verb_calls import VerbCalls

T = TypeVar("T")


@dataclass(frozen=True)
class Output:
    stream: Stream
    text: str
    ts: float | None = None  # the event's time (epoch seconds), for the log's timestamps


@dataclass(frozen=True)
class Exited:
    code: int | None
    signal: int | None = None
    timed_out: bool = False
    cpu_seconds: float | None = None  # the process's rusage (user + system), reported with its exit
    memory_kb: int | None = None  # its peak resident set size


@dataclass(frozen=True)
class Completed:
    status: OperationStatus
    result: str | None
    error: str | None = None
    duration: float | None = None


@dataclass(frozen=True)
class Started:
    """The command is running (its `spawn` event): a run that prints nothing for a while is not pending."""


OpEvent = Started | Output | Exited | Completed


class WorkingSnapshot(Protocol):
    """Where the next command runs, and the way back (`rollback`) and down again (`forward`)."""

    @property
    def working(self) -> str | None: ...

    @property
    def can_forward(self) -> bool: ...

    def move_to(self, uuid: str) -> None: ...

    def rollback(self, parent: str) -> None: ...

    def forward(self) -> str | None: ...

    def record_run(self, source: str, result: str | None, *, operation: str, command: str,
                   exit_code: int | None, move: bool = True) -> bool: ...


class Backend(Protocol):
    name: str  # "embedded", a profile name, or "environment"
    status: Observable[ConnectionState]
    position: WorkingSnapshot
    files: SnapshotFiles  # the detail view's reads of an image (list, read, grep, diff)

    async def lineage(self) -> Lineage: ...

    async def recent_operations(self, limit: int = 30) -> list[Operation]: ...

    async def commands(self, operation_uuids: list[str]) -> dict[str, str]: ...

    async def run(self, command: str, image: str, *, disposable: bool = False, env: dict[str, str] | None = None,
                  cwd: str | None = None, files: dict[str, Any] | None = None, offline: bool = False) -> Operation:
        ...

    def follow(self, operation_uuid: str, after: int | None = None) -> AsyncIterator[tuple[int, OpEvent]]: ...

    async def operation(self, uuid: str) -> Operation: ...

    async def ping(self) -> None:
        """One cheap request: a dead link shows in `status` (and the embedded engine is started again)."""

    async def aclose(self) -> None: ...


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, BackendError | ConnectionProblem | PositionError | SyncError | InspectError):
        return str(exc)
    if isinstance(exc, APIStatusError):
        return f"the server answered HTTP {exc.status}: {exc.error}"
    if isinstance(exc, APIConnectionError):
        return describe_failure(exc)
    if isinstance(exc, TimeoutError):
        return f"timed out: {exc}" if str(exc) else "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


WATCH_PAGE = 100  # operations per page of the watch's listing (operation_watch.py); usually one short page
LISTED_KINDS = ("instance", IMPORT_KIND)  # what the operations table shows: runs and imports


def operation_from_record(op: OperationRecord) -> Operation:
    command = op.command or ("import" if op.kind == IMPORT_KIND else "")
    return Operation(uuid=op.uuid, command=command, image=op.image_uuid, status=op.status,
                     result=op.result_image_uuid, exit_code=op.exit_code, duration=op.duration, error=op.error,
                     created_at=op.created_at, cpu_seconds=op.cpu_seconds, memory_kb=op.memory,
                     timed_out=bool(op.timed_out), kind=op.kind)


def lineage_from_tree(tree: LineageTree) -> Lineage:
    def imported(image: ImageRecord) -> bool:
        op = tree.operations.get(image.operation_uuid or "")
        return op is not None and op.kind == IMPORT_KIND

    snapshots = [Snapshot(uuid=image.uuid, parent=image.parent, tag=", ".join(image.tags) or None,
                          created_at=image.created_at, operation=image.operation_uuid, imported=imported(image))
                 for image in tree.images.values()]
    operations = [operation_from_record(op) for op in tree.operations.values() if op.kind == "instance"]
    return Lineage(snapshots, operations)


class StoredPosition:
    """client/position.py's WorkingPosition as the TUI moves it: every move is a transaction in the shared
    sqlite file, with a history entry (the command log)."""

    def __init__(self, position: WorkingPosition, lineage: Callable[[], Lineage]) -> None:
        self._position = position
        self._lineage = lineage
        # the last run's result that another client's move kept from becoming working: that client's move
        self.diverted: HistoryEntry | None = None

    def poll(self) -> list[HistoryEntry] | None:
        """Other clients' moves and runs since the last poll (None: nothing written elsewhere)."""
        return self._position.poll()

    @property
    def working(self) -> str | None:
        return self._position.current.value.image

    @property
    def can_forward(self) -> bool:
        return bool(self._position.current.value.redo)

    def _ancestors(self, uuid: str) -> list[str]:
        return list(reversed(self._lineage().ancestors(uuid)))  # nearest first, as WorkingPosition wants

    def move_to(self, uuid: str) -> None:
        self._position.jump(uuid, ancestors=self._ancestors, note="tui")

    def rollback(self, parent: str) -> None:
        working = self.working
        self._position.rollback(lambda uuid: parent if uuid == working else self._lineage().parent_of(uuid))

    def forward(self) -> str | None:
        if not self.can_forward:
            return None
        self._position.forward()
        return self.working

    def record_run(self, source: str, result: str | None, *, operation: str, command: str,
                   exit_code: int | None, move: bool = True) -> bool:
        """Move to the run's result if it made one and the position is still where the run started (the
        user, or another client, may have moved it meanwhile: checked in the shared file, in the same
        transaction as the move); the run goes into the history either way. True if it moved; when another
        client's move kept it from moving, `diverted` is that move. `move=False`: a `:parallel` branch,
        recorded but never followed."""
        wanted = move and result is not None and result != source
        entry = self._position.record_run(source, result, operation=operation, command=command,
                                          exit_code=exit_code, moved=wanted, if_at=source)
        moved = wanted and entry.image == result
        self.diverted = self._position.moved_by_another() if wanted and not moved else None
        return moved

    def reload(self) -> None:
        self._position.reload()


class ContreeBackend(VerbCalls):
    """The real thing, over a verified `Connection`, for the project folder `folder`."""

    def __init__(self, connection: Connection, folder: str | Path) -> None:
        self.connection = connection
        self.client = connection.client
        self.name = connection.target.name
        self.status = connection.status
        self.images = ClientLineage(connection)
        self.files = ClientSnapshotFiles(ImageFiles(connection))
        self._view = Lineage()
        working = WorkingPosition(folder, connection.cache_key)
        self._store = working.store
        self.position = StoredPosition(working, lambda: self._view)
        self.folder_sync = FolderSync(connection, self._store, folder)
        self.spawning = 0  # runs being spawned by this TUI
        self.spawned: set[str] = set()  # runs this TUI spawned: never taken for another client's

    async def _call(self, fn: Callable[[], Awaitable[T]], *, idempotent: bool = True) -> T:
        try:
            return await self.connection.call(fn, idempotent=idempotent)
        except (ConnectionProblem, APIStatusError, APIConnectionError, TimeoutError) as exc:
            raise BackendError(describe_error(exc)) from exc

    async def _guard(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except (ConnectionProblem, APIStatusError, APIConnectionError, TimeoutError) as exc:
            raise BackendError(describe_error(exc)) from exc

    async def ping(self) -> None:
        await self._call(self.client.whoami)  # retried with backoff, the embedded engine revived first

    async def lineage(self) -> Lineage:
        """The whole tree, refreshed (only what is new since the last refresh is listed)."""
        await self._guard(self.images.refresh())
        # the screen adds the snapshots its runs make to this same object: parent lookups see them too
        self._view = lineage_from_tree(self.images.tree)
        self.position.reload()  # the CLI may have moved it since
        return self._view

    async def commands(self, operation_uuids: list[str]) -> dict[str, str]:
        """The command each operation ran (read once per operation, then cached for good)."""
        records = await self._guard(self.images.details(operation_uuids))
        return {op.uuid: op.command for op in records if op.command}

    async def recent_operations(self, limit: int = 30) -> list[Operation]:
        # imports too, whoever started them (`contree-tui import` in another terminal, an SDK): a row each
        runs = sorted((op for op in self.images.tree.operations.values() if op.kind in LISTED_KINDS),
                      key=lambda op: (op.created_at, op.uuid))[-limit:]
        records = await self._guard(self.images.details([op.uuid for op in runs]))
        return [operation_from_record(op) for op in records]

    async def operations_since(self, since: float, known: set[str]) -> tuple[list[Operation], float | None]:
        """Runs and imports created since `since` (epoch seconds; any client's) that are not in `known` nor
        spawned here, each read in full (its command); and the newest creation time listed."""
        rows: list[Any] = []
        while True:  # newest first; a page is full only when many were started within the window
            offset = len(rows)
            page = await self._call(lambda o=offset: self.client.list_operations(  # type: ignore[misc]
                since=max(0, math.floor(since)), limit=WATCH_PAGE, offset=o))
            rows.extend(page)
            if len(page) < WATCH_PAGE:
                break
        listed = [OperationRecord.from_summary(row) for row in rows]
        newest = max((op.created_at.timestamp() for op in listed), default=None)
        fresh = [op.uuid for op in listed
                 if op.kind in LISTED_KINDS and op.uuid not in known and op.uuid not in self.spawned]
        if not fresh:
            return [], newest
        records = await self._guard(self.images.details(fresh))
        return [operation_from_record(op) for op in records], newest

    async def operation(self, uuid: str) -> Operation:
        return operation_from_record(await self._guard(self.images.operation(uuid, detail=True)))

    async def run(self, command: str, image: str, *, disposable: bool = False, env: dict[str, str] | None = None,
                  cwd: str | None = None, files: dict[str, Any] | None = None, offline: bool = False) -> Operation:
        options: dict[str, Any] = {"shell": True, "disposable": disposable, "truncate_output_at": FULL_OUTPUT}
        if offline:
            options["networking"] = InstanceNetworking(enabled=False)
        options.update((k, v) for k, v in (("env", env), ("cwd", cwd), ("files", files)) if v)
        # Not idempotent: retried only when the request never left, so a run is never spawned twice.
        self.spawning += 1  # operation_watch.py keeps off meanwhile: this run is not another client's
        try:
            spawned = await self._call(lambda: self.client.spawn_instance(command, image, **options),
                                       idempotent=False)
        finally:
            self.spawning -= 1
        self.spawned.add(str(spawned.uuid))
        # created now (the server's time comes with its next listing): without it the split view took an
        # older batch of finished runs for the newest one and opened panes for them too
        return Operation(uuid=str(spawned.uuid), command=command, image=image, status=OperationStatus.PENDING,
                         disposable=disposable, created_at=datetime.now(UTC))

    async def follow(self, operation_uuid: str, after: int | None = None) -> AsyncIterator[tuple[int, OpEvent]]:
        """The operation's output and outcome, live until it completes (a finished one's log is replayed);
        a broken stream resumes from the last event seen, so no line is lost or doubled."""
        try:
            async for event in follow_events(self.connection, operation_uuid, cursor=EventCursor(after)):
                data = event.data
                if event.type == "spawn" and event.spid == 1:
                    yield event.id, Started()
                elif event.type in ("stdout", "stderr") and isinstance(data, EventDataStream):
                    yield event.id, Output(Stream(event.type), data.as_text(), event.ts.timestamp())
                elif event.type == "exit" and isinstance(data, EventDataExit) and event.spid == 1:
                    usage = data.resources if hasattr(data.resources, "max_rss_kb") else None
                    cpu = (usage.user_time_us + usage.sys_time_us) / 1e6 if usage is not None else None
                    yield event.id, Exited(data.code, None if data.signal == -1 else data.signal,
                                           bool(data.timed_out), cpu, usage.max_rss_kb if usage else None)
                elif event.type == "completion" and isinstance(data, EventDataCompletion):
                    result = data.result_image_uuid if isinstance(data.result_image_uuid, str) else None
                    error = data.error if isinstance(data.error, str) else None
                    yield event.id, Completed(OperationStatus(data.status), result, error, data.duration_ms / 1000)
        except (ConnectionProblem, APIStatusError, APIConnectionError, TimeoutError) as exc:
            raise BackendError(f"the log of {operation_uuid[:8]} broke off: {describe_error(exc)}") from exc

    async def aclose(self) -> None:
        await self.folder_sync.close()
        self.images.close()
        self._store.close()
        await self.connection.aclose()


async def open_backend(profile: str | None = None, state_dir: str | Path | None = None,
                       folder: str | Path = ".", *,
                       status: Observable[ConnectionState] | None = None) -> ContreeBackend:
    """Resolve and open the target (the embedded engine by default, started on demand) for `folder`."""
    try:
        return ContreeBackend(await open_connection(profile, state_dir=state_dir, status=status), folder)
    except ConnectionProblem as exc:
        raise BackendError(str(exc)) from exc
