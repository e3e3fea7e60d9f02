"""What the resource-limit tests share: the API over an engine opened with a test's own config."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from contree_tui.engine.engine import Engine
from contree_tui.engine.http import create_app
from tests.api.conftest import BASE_URL, serve, stop


@asynccontextmanager
async def api_client(engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    """Raw httpx over a Unix socket to a real uvicorn serving `engine` (in this test's event loop)."""
    directory = tempfile.mkdtemp(prefix="ctlim-")
    path = str(Path(directory) / "api.sock")
    server, task = await serve(create_app(engine, keepalive=0.2, cancel_wait=5.0), uds=path)
    try:
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=path), base_url=BASE_URL,
                                     timeout=60) as http:
            yield http
    finally:
        await stop(server, task)
        shutil.rmtree(directory, ignore_errors=True)


def peak_rss_reset() -> None:
    """Start a new peak-RSS (VmHWM) measurement for this process (the engine and its server run in it)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def rss_kib(field: str = "VmHWM") -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/self/status")
