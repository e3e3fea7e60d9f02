"""`contree-tui engine run -- CMD`: one shell command on an image of the embedded engine, through the engine
serving the state directory (started on demand, as for every command), never in this process: an engine
owns its state directory alone (a lock), so the TUI, the CLI and an agent share the one that runs, and a
run made here is theirs to see (its result image, its log). Unlike `contree-tui run` it leaves the folder's
working snapshot and history alone: it is the engine's own smoke test.

Output streams as it arrives; then `STATUS result image: UUID` on stderr (`STATUS · no change (still SHORT)`
for a run that wrote nothing, `STATUS · no result image` for a disposable or failed one), and the command's
exit code (1 with the reason when the operation itself failed). Ctrl-C cancels the operation.
"""

from __future__ import annotations

import asyncio

from contree_client.models import InstanceNetworking, OperationStatus

from contree_tui.cli.console import CommandError, Console, Options
from contree_tui.cli.render import run_result_line
from contree_tui.client.operations import FULL_OUTPUT, RunOutcome, cancel_operation, follow_events, stream_bytes
from contree_tui.client.workspace import DEFAULT_IMAGE, Workspace


async def engine_run(ws: Workspace, opts: Options, console: Console) -> int:
    words = list(opts.get("command") or [])
    if words[:1] == ["--"]:
        words = words[1:]
    if not words:
        raise CommandError("engine run: give a command, e.g. contree-tui engine run -- echo hello")
    command = " ".join(words)
    image = await ws.resolve_image(opts.get("image") or DEFAULT_IMAGE)
    client = ws.connection.client
    networking = InstanceNetworking(enabled=False) if opts.get("no_network") else ...
    spawned = await ws.connection.call(
        lambda: client.spawn_instance(command, image, shell=True, disposable=bool(opts.get("disposable")),
                                      truncate_output_at=FULL_OUTPUT, networking=networking),
        idempotent=False)
    operation = str(spawned.uuid).lower()
    outcome = RunOutcome()
    try:
        async for event in follow_events(ws.connection, operation):
            outcome.observe(event)
            data = stream_bytes(event)
            if data and event.spid in (0, 1):  # the engine's own messages and the command's output
                console.write_bytes(event.type, data)
    except asyncio.CancelledError:  # Ctrl-C: the run is the engine's, so it would go on without this
        await asyncio.shield(cancel_operation(ws.connection, operation))
        raise
    if not outcome.done:  # the completion event never reached us (a log the server dropped): ask
        record = ws.lineage.learn_operation(
            await ws.connection.call(lambda: client.get_operation_status(operation)))
        outcome.status, outcome.result_image_uuid, outcome.error = record.status, record.result_image_uuid, \
            record.error
        if outcome.exit_code is None:
            outcome.exit_code, outcome.signal, outcome.timed_out = record.exit_code, record.signal, \
                bool(record.timed_out)
    status = outcome.status.value if outcome.status else "UNKNOWN"
    console.err.write(run_result_line(status, image, outcome.result_image_uuid) + "\n")
    console.err.flush()
    if outcome.status is not OperationStatus.SUCCESS:
        console.note(f"operation {operation} {status}{f': {outcome.error}' if outcome.error else ''}")
        return 1
    return outcome.shell_exit_code()
