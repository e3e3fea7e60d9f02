"""Operations in flight: follow one's events (resuming where the stream broke), wait for all or any of many,
cancel, and the two-stage interrupt a terminal's Ctrl-C maps to.

Following is contree-client's `follow_operation_events`: it reconnects with `Last-Event-Id` by itself while
the operation runs and drains the retained tail once it is terminal. But it retries a dead server quietly and
forever, so a quiet stream is checked here (one probe of the server after a few seconds without an event);
a server that does not answer, or a log contree-client gave up on, is retried here with the connection's
backoff for up to RECONNECT_BUDGET seconds, from the last event this client saw, while the connection's
status says "reconnecting"; the embedded engine is started again first if it died.

Two-stage interrupt, as contree-cli does it: the first press sends SIGINT to the main process's group
(`DELETE /operations/{id}/subprocesses/1?signal=INT`), so the command can clean up and the run still leaves
its image; the second press, or a first one the server could not deliver (the process not started yet,
already gone), cancels the whole operation (`DELETE /operations/{id}`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from contree_client.exceptions import APIConnectionError, APIStatusError, ConflictError, NotFoundError
from contree_client.models import (
    EventDataCompletion,
    EventDataExit,
    EventDataStream,
    OperationEvent,
    OperationResponse,
    OperationStatus,
)

from contree_tui.client.connection import Connection, ServerUnreachable
from contree_tui.client.reconnect import ConnectionState, describe_failure, is_transient
from contree_tui.client.records import TIMED_OUT_EXIT

MAIN_SPID = 1
# What our runs ask the server to keep of each stream: the spec's maximum. A user watching a build wants its
# whole log, and the server's default (1 MiB) cut a 50,000-line run off at about 19,000 lines.
FULL_OUTPUT = 10 * 1024 * 1024


# contree-client's follow retries a broken stream quietly and forever (every 0.5 s while the server does not
# answer), so a follower cannot tell a quiet command from a dead server by the stream alone: after this many
# seconds without an event it asks the server (Connection.probe, shared by all followers of a connection).
LINK_CHECK_EMBEDDED = 2.0  # a whoami down the engine's socket costs well under a millisecond
LINK_CHECK_HOSTED = 10.0
# How long a follower keeps trying to get its server back (backing off per the connection's Backoff) before
# it gives up with ServerUnreachable; counted from the moment the outage was noticed.
RECONNECT_BUDGET = 60.0


@dataclass
class EventCursor:
    """Where a follower is in an operation's event log: hand it to the next `follow_events` to resume."""

    last_event_id: int | None = None


class LinkDown(Exception):
    """The server stopped answering while a follow was waiting for events."""


async def follow_events(connection: Connection, operation_id: str, *, cursor: EventCursor | None = None,
                        spid: int | None = None, timeout: float | None = None) -> AsyncIterator[OperationEvent]:
    """The operation's events from `cursor` on (from the start by default), live, until `completion`.

    While the server does not answer, the connection's status says "reconnecting" (with the reason), the
    embedded engine is started again (its recovery ends the run FAILED, "engine restarted", and that
    completion is the next event), and the follow resumes from the last event seen: nothing lost, nothing
    twice. Raises NotFoundError for an unknown operation (or a log the server dropped, e.g. for a cancelled
    run on a hosted Contree), ServerUnreachable once RECONNECT_BUDGET seconds passed without getting the
    server back, and EngineUnavailable if the embedded engine cannot be started again."""
    cursor = cursor if cursor is not None else EventCursor()
    quiet = LINK_CHECK_EMBEDDED if connection.target.embedded else LINK_CHECK_HOSTED
    outage: float | None = None  # when the current run of failures began
    attempt = 0

    def healthy() -> None:
        nonlocal outage, attempt
        if attempt:
            outage, attempt = None, 0
            connection.status.set(ConnectionState.connected())

    while True:
        events = connection.client.follow_operation_events(
            operation_id, last_event_id=cursor.last_event_id, spid=spid, timeout=timeout)
        try:
            # aclosing: a consumer that stops early closes the stream now, not when the generator is collected
            async with contextlib.aclosing(_watched(events, connection, quiet, healthy)) as watched:
                async for event in watched:
                    cursor.last_event_id = event.id
                    healthy()
                    yield event
            return
        except LinkDown as exc:
            reason = str(exc)
        except APIConnectionError as exc:
            cause = exc.__cause__
            if isinstance(cause, APIStatusError) and not is_transient(cause):
                raise cause from None  # 404 and friends: an answer, not a broken link
            reason = describe_failure(cause or exc)
        # Back off until the server answers again (the embedded engine restarted first), then follow anew.
        outage = outage if outage is not None else time.monotonic()
        while True:
            attempt += 1
            left = outage + RECONNECT_BUDGET - time.monotonic()
            if left <= 0:
                connection.status.set(ConnectionState.failed(reason))
                raise ServerUnreachable(
                    f"lost {connection.target.describe()} while following operation {operation_id}: {reason} "
                    f"(gave up after {RECONNECT_BUDGET:g} s)")
            delay = min(connection.backoff.delay(attempt), left)
            connection.status.set(ConnectionState.reconnecting(attempt, delay, reason))
            await asyncio.sleep(delay)
            await connection.revive()
            failure = await connection.probe()
            if failure is None:
                break
            reason = failure


async def _watched(events: AsyncGenerator[OperationEvent, None], connection: Connection, quiet: float,
                   answered: Callable[[], None]) -> AsyncIterator[OperationEvent]:
    """`events`, with the server asked whether it is still there after every `quiet` seconds without one:
    LinkDown if it does not answer. `answered` is called when it does."""
    pending: asyncio.Future[OperationEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait((pending,), timeout=quiet)
            if not done:
                failure = await connection.probe(fresh_for=quiet / 2)
                if failure is None:
                    answered()
                elif not pending.done():
                    raise LinkDown(failure)
                continue
            step, pending = pending, None
            try:
                event = step.result()
            except StopAsyncIteration:
                return
            yield event
    finally:
        if pending is not None:
            pending.cancel()  # ends contree-client's generator inside its await, closing the stream
            with contextlib.suppress(asyncio.CancelledError, Exception):  # what ends us matters, not this
                await pending
        await events.aclose()


@dataclass
class RunOutcome:
    """What an operation's events say about it, folded as they arrive (no extra request needed)."""

    status: OperationStatus | None = None  # set by `completion`
    exit_code: int | None = None  # the main process's: its code, or -1 if a signal killed it
    signal: int | None = None
    timed_out: bool = False
    result_image_uuid: str | None = None
    error: str | None = None
    duration_ms: int | None = None
    seen: int = 0

    def observe(self, event: OperationEvent) -> None:
        self.seen += 1
        data = event.data
        if event.type == "exit" and event.spid == MAIN_SPID and isinstance(data, EventDataExit):
            self.exit_code = data.code
            self.signal = data.signal if data.signal >= 0 else None
            self.timed_out = bool(data.timed_out)
        elif event.type == "completion" and isinstance(data, EventDataCompletion):
            self.status = OperationStatus(data.status)
            result = data.result_image_uuid
            self.result_image_uuid = result.lower() if isinstance(result, str) and result else None
            error = data.error
            self.error = error if isinstance(error, str) and error else None
            self.duration_ms = data.duration_ms

    @property
    def done(self) -> bool:
        return self.status is not None

    def shell_exit_code(self) -> int:
        """The exit status a shell would give: the code, 128 + the killing signal, 124 if its timeout killed it
        (as coreutils' timeout(1) says it); 1 if the operation did not succeed or there was no main-process
        exit."""
        if self.status is not OperationStatus.SUCCESS or self.exit_code is None:
            return 1
        if self.timed_out:
            return TIMED_OUT_EXIT
        if self.exit_code < 0:
            return 128 + self.signal if self.signal else 1
        return self.exit_code


def stream_bytes(event: OperationEvent) -> bytes | None:
    """The payload of a stdout/stderr event as bytes (None for other events)."""
    if event.type in ("stdout", "stderr") and isinstance(event.data, EventDataStream):
        return event.data.as_bytes()
    return None


@dataclass(frozen=True)
class WaitResult:
    done: Mapping[str, OperationResponse] = field(default_factory=dict)  # uuid -> terminal response
    pending: tuple[str, ...] = ()  # not finished when the wait ended (mode "any", or the timeout)


async def wait_operations(connection: Connection, operation_ids: Iterable[str], *,
                          mode: Literal["all", "any"] = "all", timeout: float | None = None) -> WaitResult:
    """Wait until all (or any one) of the operations are terminal, or `timeout` seconds pass.

    Each wait follows the operation's event stream (imports are polled), so nothing spins. The operations
    keep running whatever happens here: stop waiting is not cancel."""
    ids = list(dict.fromkeys(op.lower() for op in operation_ids))
    if not ids:
        return WaitResult()
    tasks = {asyncio.ensure_future(_wait_one(connection, op)): op for op in ids}
    try:
        finished, _ = await asyncio.wait(tasks, timeout=timeout, return_when=(
            asyncio.FIRST_COMPLETED if mode == "any" else asyncio.ALL_COMPLETED))
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in finished:
        exc = task.exception()
        if exc is not None:
            raise exc
    done = {tasks[task]: task.result() for task in finished}
    return WaitResult(MappingProxyType(done), tuple(op for op in ids if op not in done))


async def _wait_one(connection: Connection, operation_id: str) -> OperationResponse:
    return await connection.call(lambda: connection.client.wait_operation(operation_id))


async def cancel_operation(connection: Connection, operation_id: str) -> bool:
    """Cancel; False when the operation had already finished (the server answers 409)."""
    try:
        await connection.call(lambda: connection.client.cancel_operation(operation_id), idempotent=True)
    except ConflictError:
        return False
    return True


class InterruptStage(enum.Enum):
    SIGNALLED = "signalled"  # SIGINT went to the main process
    CANCELLED = "cancelled"  # the operation was cancelled
    FINISHED = "finished"  # it had ended already: nothing to do


class Interrupter:
    """Ctrl-C for one running operation: the first `interrupt()` sends SIGINT, the next cancels."""

    def __init__(self, connection: Connection, operation_id: str) -> None:
        self.connection = connection
        self.operation_id = operation_id
        self.presses = 0
        self.stages: list[InterruptStage] = []

    async def interrupt(self) -> InterruptStage:
        self.presses += 1
        stage = await self._signal() if self.presses == 1 else None
        if stage is None:
            stage = InterruptStage.CANCELLED if await self._cancel() else InterruptStage.FINISHED
        self.stages.append(stage)
        return stage

    async def _signal(self) -> InterruptStage | None:
        client = self.connection.client
        try:
            await self.connection.call(
                lambda: client.operation_subprocess_kill(self.operation_id, MAIN_SPID, signal="INT"))
        except NotFoundError:
            return None  # no such process (yet, or any more): cancel instead
        except APIStatusError as exc:
            if exc.status in (409, 425):  # not running / not started yet: cancel instead
                return None
            raise
        return InterruptStage.SIGNALLED

    async def _cancel(self) -> bool:
        try:
            return await cancel_operation(self.connection, self.operation_id)
        except NotFoundError:
            return False


__all__ = ["EventCursor", "InterruptStage", "Interrupter", "RunOutcome", "WaitResult", "cancel_operation",
           "follow_events", "stream_bytes", "wait_operations"]
