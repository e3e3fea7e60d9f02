"""The registry of the headless commands behind `contree-tui images | run | import | ops | logs | sync |
rollback | forward | tag | download | use | history | export | engine df | prune`, and `execute`, which runs
one: each (in a module per topic: listing.py, run.py, position.py, …) opens the folder's workspace, does one
thing, prints text (or `--json`) and returns the process's exit code. parser.py parses the arguments and
calls `execute`.

Errors never surface as tracebacks: every failure a user can cause or meet (an unknown image, a refused
token, an unreachable server, an impossible rollback) becomes one `contree-tui: …` line on stderr and a
non-zero exit code (1, or 2 when Contree itself cannot be reached or used).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from contree_client.exceptions import APIConnectionError, APIStatusError, ContreeError

from contree_tui.cli.console import EXIT_UNAVAILABLE, CommandError, Console, Options
from contree_tui.cli.diff_command import diff as diff_command
from contree_tui.cli.disk import df, prune_command
from contree_tui.cli.engine_run import engine_run
from contree_tui.cli.files import download, export
from contree_tui.cli.import_image import import_image
from contree_tui.cli.listing import images, logs, ops
from contree_tui.cli.position import forward, history, rollback, use
from contree_tui.cli.run import run
from contree_tui.cli.sync import sync
from contree_tui.cli.tags import tag
from contree_tui.client.connection import Connection, ConnectionProblem, EngineUnavailable, connect, embedded_target
from contree_tui.client.disk import DiskError
from contree_tui.client.position import PositionError
from contree_tui.client.reconnect import ConnectionState, LinkState
from contree_tui.client.sync import SyncError
from contree_tui.client.workspace import UnknownReference, Workspace

COMMANDS: dict[str, Callable[[Workspace, Options, Console], Awaitable[int]]] = {
    "images": images, "ops": ops, "logs": logs, "run": run, "import": import_image, "rollback": rollback,
    "forward": forward, "use": use, "history": history, "tag": tag, "download": download, "sync": sync,
    "export": export, "df": df, "prune": prune_command, "engine-run": engine_run, "diff": diff_command,
}
EMBEDDED_ONLY = {"engine-run"}  # the embedded engine's own commands: never a profile's Contree


def execute(name: str, opts: Options, console: Console | None = None,
            command: Callable[[Workspace, Options, Console], Awaitable[int]] | None = None) -> int:
    """Run command `name` (or `command`, a command of another module: build_command.py) with parsed options
    (`profile`, `state_dir`, `folder` and the command's own); returns the exit code. Prints errors as one line
    each."""
    console = console or Console()
    command = command or COMMANDS[name]
    _warnings_to(console)

    async def go() -> int:
        folder = opts.get("folder") or os.getcwd()
        if name in EMBEDDED_ONLY:
            ws = Workspace(await connect(embedded_target(opts.get("state_dir"))), folder)
        else:
            ws = await Workspace.open(folder, profile=opts.get("profile"), state_dir=opts.get("state_dir"))
        async with ws:
            unwatch = _announce_outages(ws.connection, console)
            try:
                return await command(ws, opts, console)
            finally:
                unwatch()

    try:
        return asyncio.run(go())
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away: exit like a shell pipeline does, without a second error at interpreter exit
        # when Python flushes the dead stdout
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (CommandError, UnknownReference, PositionError, SyncError, DiskError) as exc:
        console.note(str(exc))
        return 1
    except EngineUnavailable as exc:  # the engine's own words, as it logged them: a missing prerequisite is a list
        console.note(str(exc))
        return EXIT_UNAVAILABLE
    except ConnectionProblem as exc:
        console.note(str(exc).replace("\n", " | "))
        return EXIT_UNAVAILABLE
    except APIStatusError as exc:
        console.note(f"the server refused: HTTP {exc.status}: {_error_text(exc.error)}")
        return 1
    except (APIConnectionError, ContreeError, TimeoutError) as exc:
        console.note(f"{type(exc).__name__}: {exc}")
        return EXIT_UNAVAILABLE
    except OSError as exc:
        console.note(str(exc))
        return 1
    except Exception as exc:  # the promise is "one line, never a traceback"
        if os.environ.get("CONTREE_TUI_DEBUG"):
            raise
        console.note(f"internal error: {type(exc).__name__}: {exc} (CONTREE_TUI_DEBUG=1 shows the traceback)")
        return 70  # EX_SOFTWARE


def _announce_outages(connection: Connection, console: Console) -> Callable[[], None]:
    """One stderr line when the link goes down, not one per retry: the connection (or a follow) retries on its
    own, and either gets the server back or ends the command with the reason. Returns the unsubscriber."""
    what = "engine" if connection.target.embedded else connection.target.describe()
    down = False

    def changed(state: ConnectionState) -> None:
        nonlocal down
        if state.state is LinkState.RECONNECTING and not down:
            down = True
            console.note(f"{what} unreachable, reconnecting…")
        elif state.state is LinkState.CONNECTED:
            down = False

    return connection.status.subscribe(changed)


def _warnings_to(console: Console) -> None:
    """The client layer's warnings (a skipped file in a sync, a failing status subscriber) as `contree-tui:`
    lines on stderr, instead of the bare text logging's last-resort handler would print."""
    log = logging.getLogger("contree_tui")
    if not log.handlers:
        handler = logging.StreamHandler(console.err)
        handler.setFormatter(logging.Formatter("contree-tui: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.WARNING)
        log.propagate = False


def _error_text(error: Any) -> str:
    if isinstance(error, str):
        return error
    return json.dumps(error) if error is not None else "no reason given"


__all__ = ["COMMANDS", "execute"]
