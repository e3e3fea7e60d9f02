"""`contree-tui import`: an image from a registry or a local archive or layout, with its progress."""

from __future__ import annotations

import asyncio
import getpass
import signal
import sys

from contree_client.models import OperationStatus

from contree_tui.cli.console import CommandError, Console, Options
from contree_tui.client.image_import import ImportSpec, follow_import, learn_imported, start_import
from contree_tui.client.operations import (
    cancel_operation,
)
from contree_tui.client.progress import ProgressLine
from contree_tui.client.workspace import Workspace


async def import_image(ws: Workspace, opts: Options, console: Console) -> int:
    """Start an import, show its progress (a live bar on a terminal, a line a step otherwise) and exit 0 when
    it succeeded, 1 with the reason on stderr when not; Ctrl-C cancels it (DELETE the operation)."""
    ref = str(opts.get("ref") or "").strip()
    if not ref:
        raise CommandError("import: give an image, e.g. contree-tui import alpine:3 or oci:./layout:latest")
    spec = ImportSpec(ref=ref, tag=opts.get("tag") or None, insecure=bool(opts.get("insecure")),
                      username=opts.get("username"), password=_import_password(opts), timeout=opts.get("timeout"))
    as_json = bool(opts.get("json"))
    operation = await start_import(ws.connection, spec)
    line = ProgressLine(console.err, spec.tag or ref, live=False if as_json else None)
    if not line.live:
        console.note(f"importing {ref} (operation {operation})")
    loop = asyncio.get_running_loop()
    cancelling: list[asyncio.Task[bool]] = []

    def on_sigint() -> None:
        if not cancelling:  # a second Ctrl-C changes nothing: the cancel is on its way
            line.close()
            console.note(f"cancelling the import (operation {operation})")
            cancelling.append(loop.create_task(cancel_operation(ws.connection, operation)))

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        result = await follow_import(ws.connection, operation, line.update)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        line.close()
        if cancelling:
            await asyncio.gather(*cancelling, return_exceptions=True)
    if result.succeeded and result.image:
        await learn_imported(ws.connection, ws.lineage, result)  # `images` shows it, and a moved tag
    if as_json:
        console.json(result.to_json())
    if not result.succeeded:
        reason = f": {result.error}" if result.error else ""
        console.note(f"import of {ref} {result.status.value}{reason}")
        return 130 if cancelling and result.status is OperationStatus.CANCELLED else 1
    if not as_json:
        console.print(result.image or "")
        console.note(f"imported {ref} as {(result.image or '')[:8]}" + (f" (tag {result.tag})" if result.tag else ""))
    return 0


def _import_password(opts: Options) -> str | None:
    """`--password-stdin` reads the first line of stdin (as `docker login` does: not in argv, not in the
    shell's history); with no such flag a terminal is asked."""
    username = opts.get("username")
    if opts.get("password_stdin"):
        if not username:
            raise CommandError("--password-stdin needs --username")
        return sys.stdin.readline().rstrip("\r\n")
    if username is None:
        return None
    if not sys.stdin.isatty():
        raise CommandError("--username needs --password-stdin (no terminal to ask for the password on)")
    return getpass.getpass(f"password for {username}: ")
