"""Operations in flight, against the real served engine: following events and resuming from a cursor, waiting
for all or any of many, cancelling, and the two-stage interrupt."""

from __future__ import annotations

import asyncio

from contree_client.models import OperationStatus

from contree_tui.client.connection import Connection
from contree_tui.client.operations import (
    EventCursor,
    Interrupter,
    InterruptStage,
    RunOutcome,
    cancel_operation,
    follow_events,
    stream_bytes,
    wait_operations,
)

BUSYBOX = "tag:busybox:latest"


async def spawn(conn: Connection, command: str, **options: object) -> str:
    spawned = await conn.client.spawn_instance(command, BUSYBOX, shell=True, **options)  # type: ignore[arg-type]
    return str(spawned.uuid)


async def test_following_resumes_from_the_cursor_without_loss_or_duplicates(connection: Connection) -> None:
    op = await spawn(connection, "for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done", disposable=True)
    cursor = EventCursor()
    seen = []
    async for event in follow_events(connection, op, cursor=cursor):
        seen.append(event)
        if event.type == "stdout" and b"line2" in (stream_bytes(event) or b""):
            break  # the viewer went away mid-run
    assert cursor.last_event_id == seen[-1].id
    outcome = RunOutcome()
    async for event in follow_events(connection, op, cursor=cursor):
        seen.append(event)
    for event in seen:
        outcome.observe(event)
    ids = [e.id for e in seen]
    assert ids == sorted(set(ids))  # strictly increasing: nothing twice
    assert seen[-1].type == "completion" and outcome.status is OperationStatus.SUCCESS
    out = b"".join(stream_bytes(e) or b"" for e in seen if e.type == "stdout")
    assert out == b"".join(b"line%d\n" % i for i in range(1, 6))  # nothing lost
    assert outcome.exit_code == 0 and outcome.shell_exit_code() == 0


async def test_wait_for_any_then_all_and_cancel(connection: Connection) -> None:
    quick = await spawn(connection, "true", disposable=True)
    slow = await spawn(connection, "sleep 30", disposable=True)
    first = await wait_operations(connection, [quick, slow], mode="any", timeout=30)
    assert set(first.done) == {quick} and first.pending == (slow,)
    assert first.done[quick].status is OperationStatus.SUCCESS
    timed_out = await wait_operations(connection, [slow], timeout=0.3)
    assert not timed_out.done and timed_out.pending == (slow,)  # stopping the wait does not stop the run
    assert await cancel_operation(connection, slow) is True
    every = await wait_operations(connection, [quick, slow], timeout=30)
    assert every.pending == () and every.done[slow].status is OperationStatus.CANCELLED
    assert await cancel_operation(connection, slow) is False  # already over: 409, not an error


async def test_first_interrupt_signals_the_command(connection: Connection) -> None:
    op = await spawn(connection, "echo ready; sleep 30", disposable=True)
    outcome = RunOutcome()
    interrupter = Interrupter(connection, op)
    async for event in follow_events(connection, op):
        outcome.observe(event)
        if event.type == "stdout":
            assert await interrupter.interrupt() is InterruptStage.SIGNALLED
    assert outcome.status is OperationStatus.SUCCESS  # the run ended normally, killed by SIGINT
    assert outcome.signal == 2 and outcome.exit_code == -1 and outcome.shell_exit_code() == 130


async def test_second_interrupt_cancels_a_command_that_ignores_sigint(connection: Connection) -> None:
    op = await spawn(connection, "trap '' INT; echo ready; sleep 30; echo survived", disposable=False)
    outcome = RunOutcome()
    interrupter = Interrupter(connection, op)
    async for event in follow_events(connection, op):
        outcome.observe(event)
        if event.type == "stdout" and stream_bytes(event) == b"ready\n":
            assert await interrupter.interrupt() is InterruptStage.SIGNALLED
            await asyncio.sleep(0.5)
            status = await connection.client.get_operation_status(op)
            assert status.status is OperationStatus.EXECUTING  # SIGINT was ignored: still running
            assert await interrupter.interrupt() is InterruptStage.CANCELLED
    assert outcome.status is OperationStatus.CANCELLED and outcome.result_image_uuid is None
    assert outcome.shell_exit_code() == 1
    assert await interrupter.interrupt() is InterruptStage.FINISHED
    assert interrupter.stages == [InterruptStage.SIGNALLED, InterruptStage.CANCELLED, InterruptStage.FINISHED]


async def test_an_interrupt_right_after_spawn_ends_the_run(connection: Connection) -> None:
    op = await spawn(connection, "sleep 30", disposable=True)
    interrupter = Interrupter(connection, op)
    stage = await interrupter.interrupt()
    # depending on how far the run got: SIGINT delivered, or (not started yet) cancelled at once
    assert stage in (InterruptStage.SIGNALLED, InterruptStage.CANCELLED)
    done = await wait_operations(connection, [op], timeout=30)
    assert done.done[op].status.is_terminal()
