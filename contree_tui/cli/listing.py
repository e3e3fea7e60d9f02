"""`contree-tui images | ops | logs`: the image tree, the operations, an operation's output."""

from __future__ import annotations

import json
from typing import Any

from contree_client.exceptions import APIStatusError, NotFoundError
from contree_client.models import OperationStatus

from contree_tui.cli.console import CommandError, Console, Options
from contree_tui.cli.render import (
    operation_header,
    operation_line,
    tree_lines,
)
from contree_tui.client.operations import (
    RunOutcome,
    follow_events,
    stream_bytes,
)
from contree_tui.client.step_result import ReadableStdout
from contree_tui.client.workspace import Workspace


async def images(ws: Workspace, opts: Options, console: Console) -> int:
    await ws.lineage.refresh(full=bool(opts.get("full")))
    tree = ws.lineage.tree
    position = ws.position.image
    if opts.get("json"):
        rows = []
        for _depth, image in tree.walk():
            op = tree.producing_operation(image.uuid)
            rows.append({**image.to_json(), "command": op.command if op else None, "current": image.uuid == position})
        console.json(rows)
        return 0
    for line in tree_lines(tree, position):
        console.print(line)
    return 0


async def ops(ws: Workspace, opts: Options, console: Console) -> int:
    await ws.lineage.refresh()
    found = sorted(ws.lineage.tree.operations.values(), key=lambda op: (op.created_at, op.uuid), reverse=True)
    status = opts.get("status")
    if status:
        wanted = {s.strip().upper() for s in status.split(",")}
        unknown = wanted - {s.value for s in OperationStatus}
        if unknown:
            raise CommandError(f"--status: unknown {', '.join(sorted(unknown))} (one of "
                               f"{', '.join(s.value for s in OperationStatus)})")
        found = [op for op in found if op.status.value in wanted]
    limit = opts.get("limit")
    if limit is not None and not opts.get("all"):
        found = found[:limit]
    # exit codes and commands are in the full record only; terminal ones are fetched once, then cached
    missing = [op.uuid for op in found if op.kind == "instance" and not op.detailed]
    if missing:
        details = {op.uuid: op for op in await ws.lineage.details(missing)}
        found = [details.get(op.uuid, op) for op in found]
    if opts.get("json"):
        console.json([op.to_json() for op in found])
        return 0
    console.print(operation_header())
    for op in reversed(found):
        console.print(operation_line(op))
    return 0


async def logs(ws: Workspace, opts: Options, console: Console) -> int:
    operation = await ws.resolve_operation(opts.get("operation") or "@")
    client = ws.connection.client
    as_json = bool(opts.get("json"))  # --json: the events as the API has them, a result record included
    printed = False
    stdout = ReadableStdout()  # a pipeline function step's result record, as `→ returned: VALUE`

    def emit(event: Any) -> None:
        nonlocal printed
        if as_json:
            console.print(json.dumps(event.to_dict()))
            return
        data = stream_bytes(event)
        if data:
            printed = True
            data = stdout.feed(data) if event.type == "stdout" else data
            if data:
                console.write_bytes(event.type, data)

    try:
        if opts.get("follow"):
            outcome = RunOutcome()
            async for event in follow_events(ws.connection, operation):
                outcome.observe(event)
                emit(event)
            console.write_bytes("stdout", stdout.flush())
            return await _report_followed(ws, operation, outcome, console)
        else:
            async def dump() -> list[Any]:
                return [e async for e in client.iter_operation_events(operation, follow=False)]

            for event in await ws.connection.call(dump):
                emit(event)
            console.write_bytes("stdout", stdout.flush())
            if not printed and not as_json:  # an empty stdout looked like a command that found nothing
                console.note(f"operation {operation[:8]} printed nothing")
    except NotFoundError:
        return await _logs_from_status(ws, operation, console, as_json)
    except APIStatusError as exc:
        if exc.status != 425:
            raise
        console.note(f"operation {operation} has not started yet (follow it with -f)")
    return 0


async def _report_followed(ws: Workspace, operation: str, outcome: RunOutcome, console: Console) -> int:
    """After `logs -f`: an operation that did not succeed (cancelled, or failed because its engine stopped)
    says why on stderr and makes the exit status 1, as `run` would have."""
    status, error = outcome.status, outcome.error
    if status is None:  # the completion event never reached us (a log resumed past it): ask
        response = await ws.connection.call(lambda: ws.connection.client.get_operation_status(operation))
        status = OperationStatus(response.status)
        error = response.error if isinstance(response.error, str) and response.error else None
    if status is OperationStatus.SUCCESS or not status.is_terminal():
        return 0
    console.note(f"operation {operation} {status.value}{f': {error}' if error else ''}")
    return 1


async def _logs_from_status(ws: Workspace, operation: str, console: Console, as_json: bool) -> int:
    """No event log (an unknown operation, or one whose log was dropped): the folded result, if any."""
    try:
        response = await ws.connection.call(lambda: ws.connection.client.get_operation_status(operation))
    except NotFoundError:
        raise CommandError(f"no operation {operation}") from None
    result = getattr(response.metadata, "result", None)
    if as_json:
        console.json(response.to_dict())
        return 0
    if result is None or result is Ellipsis:
        console.note(f"operation {operation} ({response.status}) has no output to show")
        return 0
    for stream in ("stdout", "stderr"):
        repr_ = getattr(result, stream, None)
        if repr_ is not None and repr_ is not Ellipsis:
            data = repr_.as_bytes()
            if stream == "stdout":
                readable = ReadableStdout()
                data = readable.feed(data) + readable.flush()
            console.write_bytes(stream, data)
    return 0
