"""`contree-tui run`: a shell command on the working snapshot, its output streamed, its exit code returned;
Ctrl-C interrupts the command, a second one cancels the operation."""

from __future__ import annotations

import asyncio
import signal

from contree_tui.cli.console import CommandError, Console, Options
from contree_tui.client.operations import (
    InterruptStage,
    cancel_operation,
)
from contree_tui.client.records import TIMED_OUT_EXIT
from contree_tui.client.runner import RunResult, RunSpec, start_run
from contree_tui.client.workspace import Workspace


async def run(ws: Workspace, opts: Options, console: Console) -> int:
    words = list(opts.get("command") or [])
    if words[:1] == ["--"]:
        words = words[1:]
    if not words:
        raise CommandError("run: give a command, e.g. contree-tui run -- 'make test'")
    env = {}
    for item in opts.get("env") or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"--env {item!r}: expected KEY=VALUE")
        env[key] = value
    spec = RunSpec(command=" ".join(words), image=opts.get("image"), disposable=bool(opts.get("disposable")),
                   sync=opts.get("sync"), env=env, cwd=opts.get("cwd"), timeout=opts.get("timeout"),
                   networking=not opts.get("no_network"))
    as_json = bool(opts.get("json"))
    started = await start_run(ws, spec)
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    async def interrupt() -> None:
        stage = await started.interrupter.interrupt()
        if stage is InterruptStage.SIGNALLED:
            console.note("sent SIGINT to the command; Ctrl-C again cancels the operation")
        elif stage is InterruptStage.CANCELLED:
            console.note(f"cancelling operation {started.operation_id}")

    def on_sigint() -> None:
        task = loop.create_task(interrupt())
        pending.add(task)
        task.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        result = await started.follow(None if as_json else console.write_bytes)
    except BrokenPipeError:
        # nobody reads the output any more (`run … | head`): stop the run too, as a local pipeline would
        await cancel_operation(ws.connection, started.operation_id)
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    return _report_run(result, console, as_json)


def _report_run(result: RunResult, console: Console, as_json: bool) -> int:
    if as_json:
        console.json(result.to_json())
    if result.timed_out:
        console.note(f"operation {result.operation}: the command timed out and was killed (exit {TIMED_OUT_EXIT})")
    if not result.succeeded:
        reason = f": {result.error}" if result.error else ""
        console.note(f"operation {result.operation} {result.status.value}{reason}")
        return 1
    return result.exit_code
