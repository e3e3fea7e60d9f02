"""An operation an official client starts in exec form (`command` + `args`, `shell: false`, as contree-cli's
`contree run --use tag:busybox:latest -- echo hi from contree-cli` sends it) reads as its whole command line in
`contree-tui ops`, not as the program alone (`echo`); a shell-form run still reads as its shell command (the
API ignores `args` then). contree-client in-process against the real served engine, `ops` as a subprocess."""

from __future__ import annotations

import os
import sqlite3
import uuid as uuidlib
from pathlib import Path

from contree_tui.client.connection import Connection
from contree_tui.client.lineage_cache import WHOLE_COMMANDS_MARK
from tests.client.test_cli import Cli


async def spawned(connection: Connection, command: str, args: list[str], shell: bool) -> str:
    client = connection.client
    op = await client.spawn_instance(command, "tag:busybox:latest", args=args, shell=shell, disposable=True)
    done = await client.wait_operation(op.uuid, timeout=60)
    assert str(done.status.value) == "SUCCESS", done
    return str(op.uuid).lower()


async def test_ops_shows_an_exec_form_run_whole_and_shell_quoted(connection: Connection, engine_dir: Path,
                                                                 tmp_path: Path) -> None:
    marker = uuidlib.uuid4().hex[:8]
    exec_form = await spawned(connection, "echo", ["hi", "from", "contree-cli", f"two words {marker}"], False)
    shell_form = await spawned(connection, f"echo shell {marker}", ["ignored"], True)
    cli = Cli(engine_dir, tmp_path / "project")
    listed = {op["uuid"]: op["command"] for op in cli.json("ops")}  # type: ignore[attr-defined]
    assert listed[exec_form] == f"echo hi from contree-cli 'two words {marker}'"
    assert listed[shell_form] == f"echo shell {marker}"
    lines = {line[:8]: line for line in cli("ops").stdout.splitlines()}
    assert lines[exec_form[:8]].endswith(f"echo hi from contree-cli 'two words {marker}'"), lines[exec_form[:8]]
    assert lines[shell_form[:8]].endswith(f"echo shell {marker}"), lines[shell_form[:8]]


async def test_a_cache_from_before_reads_the_program_only_rows_again(connection: Connection, engine_dir: Path,
                                                                     tmp_path: Path) -> None:
    """A lineage cache an older version filled holds `echo` for the run, detailed (never read again): opened
    by this version, the row is read once more and `ops` shows the whole line."""
    exec_form = await spawned(connection, "echo", ["from", "an", "old", "cache"], False)
    cli = Cli(engine_dir, tmp_path / "project")
    assert {op["uuid"]: op["command"] for op in cli.json("ops")}[exec_form] == "echo from an old cache"  # type: ignore[index]
    files = list((Path(os.environ["XDG_CACHE_HOME"]) / "contree-tui" / "lineage").glob("*.sqlite"))
    assert len(files) == 1, files
    with sqlite3.connect(files[0]) as db:  # what the older version left: the program alone, no upgrade mark
        db.execute("UPDATE operations SET command='echo' WHERE uuid=?", (exec_form,))
        db.execute("DELETE FROM marks WHERE name=?", (WHOLE_COMMANDS_MARK,))
    db.close()
    assert {op["uuid"]: op["command"] for op in cli.json("ops")}[exec_form] == "echo from an old cache"  # type: ignore[index]
