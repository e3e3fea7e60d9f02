"""An operation an official client starts in exec form (`command` + `args`, `shell: false`, as contree-cli's
`contree run --use tag:busybox:latest -- echo hi from contree-cli` sends it) reads as its whole command line in
`contree-tui ops`, not as the program alone (`echo`); a shell-form run still reads as its shell command (the
API ignores `args` then). contree-client in-process against the real served engine, `ops` as a subprocess."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

from contree_tui.client.connection import Connection
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
