"""A Backend with fixed data and a fixed clock, for SVG snapshots that must not change between runs: a small
branching session on busybox with one run still going, one failed and the newest printing to both streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from contree_client.models import OperationStatus

from contree_tui.client.observable import Observable
from contree_tui.client.reconnect import ConnectionState
from contree_tui.tui.data import Completed, Exited, OpEvent, Output
from contree_tui.tui.model import Lineage, Operation, Position, Snapshot, Stream

NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def frozen_clock() -> datetime:
    return NOW


def uid(n: int, kind: str = "a") -> str:
    return f"{kind}{n:07x}-0000-4000-8000-{n:012x}"


BASE = uid(0xB0)
SNAPSHOTS = [
    Snapshot(BASE, None, "busybox:latest", ago(days=2)),
    Snapshot(uid(1), BASE, None, ago(hours=3), uid(1, "c")),
    Snapshot(uid(2), uid(1), None, ago(hours=2, minutes=10), uid(2, "c")),
    Snapshot(uid(3), uid(2), None, ago(minutes=48), uid(3, "c")),
    Snapshot(uid(4), uid(1), None, ago(minutes=35), uid(4, "c")),
    Snapshot(uid(5), uid(2), None, ago(minutes=6), uid(5, "c")),
    Snapshot(uid(8), uid(4), None, ago(minutes=30), uid(8, "c")),  # under a collapsed branch: lazily shown
]
WORKING = uid(5)


def _op(n: int, command: str, image: str, minutes: float, status: OperationStatus = OperationStatus.SUCCESS,
        result: str | None = None, exit_code: int | None = 0, duration: float | None = 1.25,
        error: str | None = None) -> Operation:
    done = status.is_terminal() and exit_code is not None  # the exit event carries the rusage
    return Operation(uuid=uid(n, "c"), command=command, image=image, status=status, result=result,
                     exit_code=exit_code, duration=duration, error=error, created_at=ago(minutes=minutes),
                     cpu_seconds=round((duration or 0) * 0.7, 2) if done else None,
                     memory_kb=1024 + 96 * n if done else None)


OPERATIONS = [
    _op(1, "echo 'welcome to the sandbox' > /etc/motd", BASE, 180, result=uid(1), duration=0.04),
    _op(2, "mkdir -p /app && cd /app && printf 'all:\\n\\techo built\\n' > Makefile", uid(1), 130, result=uid(2),
        duration=0.06),
    _op(3, "cd /app && make test", uid(2), 48, result=uid(3), exit_code=2, duration=3.5),
    _op(4, "rm -rf /app && echo experiment > /branch", uid(1), 35, result=uid(4), duration=0.05),
    _op(8, "echo deeper > /branch", uid(4), 30, result=uid(8), duration=0.03),
    _op(6, "wget -q -O- http://example.invalid/", uid(3), 20, OperationStatus.FAILED, exit_code=None,
        duration=30.0, error="timed out after 30 s"),
    _op(5, "cd /app && make && ls -la", uid(2), 6, result=uid(5), duration=1.42),
    _op(7, "while sleep 1; do date; done", uid(5), 2, OperationStatus.EXECUTING, exit_code=None, duration=None),
]

LOGS: dict[str, list[OpEvent]] = {
    uid(5, "c"): [
        Output(Stream.STDOUT, "echo built\nbuilt\n"),
        Output(Stream.STDERR, "make: warning: Clock skew detected.\n"),
        Output(Stream.STDOUT, "total 12\ndrwxr-xr-x    2 root     root          4096 Mar 14 15:03 .\n"
                              "drwxr-xr-x   18 root     root          4096 Mar 14 15:03 ..\n"
                              "-rw-r--r--    1 root     root            20 Mar 14 15:03 Makefile\n"),
        Exited(0),
        Completed(OperationStatus.SUCCESS, uid(5), None, 1.42),
    ],
    uid(7, "c"): [Output(Stream.STDOUT, "Sat Mar 14 15:07:26 UTC 2026\nSat Mar 14 15:07:27 UTC 2026\n")],
}


class FrozenBackend:
    name = "embedded"

    def __init__(self) -> None:
        self.status: Observable[ConnectionState] = Observable(ConnectionState.connected())
        self.position = Position()
        from tests.tui.frozen_files import frozen_files  # here: its trees are built from this module's snapshots

        self.files = frozen_files()

    async def lineage(self) -> Lineage:
        return Lineage(SNAPSHOTS, OPERATIONS)

    async def recent_operations(self, limit: int = 30) -> list[Operation]:
        return [Operation(**vars(op)) for op in OPERATIONS]

    async def commands(self, operation_uuids: list[str]) -> dict[str, str]:
        known = {op.uuid: op.command for op in OPERATIONS}
        return {u: known[u] for u in operation_uuids if u in known}

    async def run(self, command: str, image: str, *, disposable: bool = False) -> Operation:
        raise AssertionError("the frozen backend runs nothing")

    async def follow(self, operation_uuid: str, after: int | None = None) -> AsyncIterator[tuple[int, OpEvent]]:
        for number, event in enumerate(LOGS.get(operation_uuid, []), start=1):
            yield number, event
        if operation_uuid == uid(7, "c"):
            await asyncio.Event().wait()  # still running: no more output, no end

    async def operation(self, uuid: str) -> Operation:
        return next(op for op in OPERATIONS if op.uuid == uuid)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
