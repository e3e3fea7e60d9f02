"""Issue #11: `contree images import` (contree-cli, the official CLI) against the engine. The original complaint:
the CLI retries every 5xx forever (contree_cli/client.py: RetryPolicy(max_attempts=None, retry_unsafe=True)), so an
engine answering 5xx to the import made it hang. Here the real CLI runs as a subprocess against the engine served
on 127.0.0.1 TCP (the CLI takes only an http URL) and must finish: an import from a real docker-registry on
127.0.0.1 succeeds and the image runs; a missing tag, a registry that is down and a malformed reference end with
a non-zero exit and the engine's reason, well inside the subprocess deadline (a retry loop would hit it); so does
an import on a nearly full disk (once a 507 to the POST, which the CLI retried without end).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from contree_tui.engine.config import EngineConfig
from contree_tui.engine.engine import Engine
from contree_tui.engine.http import create_app
from tests.api.conftest import serve, stop
from tests.images.busybox_layouts import busybox_layer
from tests.images.oci_build import write_layout
from tests.images.registry import Registry, free_port, have_registry

pytestmark = [
    pytest.mark.skipif(not have_registry(), reason="docker-registry and skopeo are not installed"),
    pytest.mark.skipif(shutil.which("contree") is None, reason="contree-cli is not installed (pip install '.[test]')"),
]

# The CLI polls every 5 s (contree_cli/cli/images.py); two polls and the process start fit well in 60 s, a retry
# loop never does.
CLI_DEADLINE = 60


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("cli-registry")
    reg = Registry.start(root / "registry")
    write_layout(root / "app", [busybox_layer(**{"etc/motd": b"imported by contree-cli\n"})], tag="v1",
                 env=["PATH=/bin"])
    reg.push(root / "app", "v1", "cli/app")
    yield reg
    reg.stop()


@asynccontextmanager
async def served(engine: Engine) -> AsyncIterator[str]:
    """The engine's API on 127.0.0.1 TCP: its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server, task = await serve(create_app(engine), sockets=[sock])
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await stop(server, task)
        sock.close()


@pytest.fixture
async def api_url(engine: Engine) -> AsyncIterator[str]:
    async with served(engine) as url:
        yield url


async def contree(api_url: str, home: Path, *args: str) -> tuple[int, str, str]:
    """The real CLI in a subprocess (the engine serves from this event loop, so the wait is async). A first call
    in a fresh HOME saves a jwt profile (`contree auth` checks the token with GET /v1/whoami): the other commands
    take no URL without one."""
    if not (home / ".auth-done").exists():
        code, out, err = await _contree(home, "auth", "--type", "jwt", "--url", api_url, "--token", "local-test-token")
        assert code == 0, (out, err)
        (home / ".auth-done").touch()
    return await _contree(home, "-o", "json", *args)


async def _contree(home: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "contree_cli", *args,
        env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), CLI_DEADLINE)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"contree {' '.join(args)} still running after {CLI_DEADLINE} s (retrying?)") from None
    return proc.returncode or 0, out.decode(), err.decode()


async def test_contree_cli_imports_and_the_image_runs(engine: Engine, api_url: str, registry: Registry,
                                                      tmp_path: Path) -> None:
    code, out, err = await contree(api_url, tmp_path, "images", "import", f"{registry.host}/cli/app:v1")
    assert code == 0, err
    # _derive_tag drops the registry host: the tag is the repository path
    image = engine.store.image_by_tag("cli/app:v1")
    assert image is not None and image.uuid in out
    code, out, err = await contree(api_url, tmp_path, "run", "--use", image.uuid, "--disposable", "--",
                                   "cat", "/etc/motd")
    assert code == 0, err
    assert "imported by contree-cli" in out


async def test_contree_cli_import_failures_end_with_the_reason(api_url: str, registry: Registry,
                                                               tmp_path: Path) -> None:
    code, out, err = await contree(api_url, tmp_path, "images", "import", f"{registry.host}/cli/app:v404")
    assert code == 1
    (row,) = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert row["status"] == "FAILED" and "has no tag 'v404'" in row["error"], row

    down = f"127.0.0.1:{free_port()}/cli/app:v1"  # nothing listens there
    code, out, err = await contree(api_url, tmp_path, "images", "import", down)
    assert code == 1 and "FAILED" in out, (out, err)

    code, out, err = await contree(api_url, tmp_path, "images", "import", "docker://Bad/Name:x")
    assert code != 0 and "accepted forms" in out + err, (out, err)


async def test_a_nearly_full_disk_ends_the_cli_with_the_reason(open_engine: Callable[..., Awaitable[Engine]],
                                                               registry: Registry, tmp_path: Path) -> None:
    """The engine once refused such an import with 507, which contree-cli retried without end."""
    engine = await open_engine(EngineConfig(min_free_bytes=1 << 60))
    async with served(engine) as url:
        code, out, err = await contree(url, tmp_path, "images", "import", f"{registry.host}/cli/app:v1")
    assert code == 1, (out, err)
    (row,) = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert row["status"] == "FAILED" and "disk is nearly full" in row["error"], row
