"""Another client beside the TUI under test: the real headless CLI as a subprocess (this tree's code, through
PYTHONPATH, with the test's cache directory, so it shares the folder's position and the lineage cache), or
contree-client in-process on its own connection (as contree-sdk or an agent through contree-mcp would be)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from contree_tui.client.connection import Connection, connect, embedded_target
from tests.client.conftest import CLI, FAST

ROOT = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)  # the test's XDG_CACHE_HOME and CONTREE_HOME (conftest's clean_env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


async def start_cli(engine_dir: Path, folder: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *CLI, "--state-dir", str(engine_dir), "-C", str(folder), *args, env=cli_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def cli(engine_dir: Path, folder: Path, *args: str) -> str:
    """Run `contree-tui ARGS` to its end (without blocking the app's event loop); its stdout."""
    process = await start_cli(engine_dir, folder, *args)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0 and b"Traceback" not in err, err.decode()
    return out.decode()


async def cli_run(engine_dir: Path, folder: Path, command: str) -> dict[str, Any]:
    """`contree-tui run --json -- COMMAND` in `folder`: its result (operation, source, result_image, position)."""
    result = json.loads(await cli(engine_dir, folder, "run", "--json", "--", command))
    assert isinstance(result, dict)
    return result


@asynccontextmanager
async def sdk(engine_dir: Path) -> AsyncIterator[Connection]:
    """contree-client on a connection of its own: an SDK user or an agent, not the TUI."""
    connection = await connect(embedded_target(engine_dir), backoff=FAST)
    try:
        yield connection
    finally:
        await connection.aclose()


def project_app(engine_dir: Path, tmp_path: Path) -> tuple[Any, Path]:
    """The TUI on a fresh project folder (the folder the other client shares), and that folder."""
    from contree_tui.tui.app import ContreeApp

    folder = tmp_path / "project"
    folder.mkdir()
    return ContreeApp(state_dir=engine_dir, folder=folder), folder
