"""The API tests' fixtures: a real uvicorn server on a Unix socket, in the test's own event loop, in front
of the real engine fixture; clients are the official contree-client (async, httpx) and raw httpx."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from contree_client.httpx import ContreeAsyncClient

from contree_tui.engine.engine import Engine
from contree_tui.engine.http import create_app

BASE_URL = "http://localhost"


async def serve(app: object, sockets: list[socket.socket] | None = None,
                **config: object) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Start uvicorn as a task of the running loop; returns once it accepts connections."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2,
                                           **config))  # type: ignore[arg-type]
    task = asyncio.create_task(server.serve(sockets=sockets))
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
    assert server.started, "uvicorn did not start"
    return server, task


async def stop(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def socket_path(engine: Engine) -> AsyncIterator[str]:
    """The API on a Unix socket (in a short /tmp dir: socket paths are limited to 107 bytes)."""
    directory = tempfile.mkdtemp(prefix="ctapi-")
    path = str(Path(directory) / "api.sock")
    server, task = await serve(create_app(engine, keepalive=0.2, cancel_wait=5.0), uds=path)
    try:
        yield path
    finally:
        await stop(server, task)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def raw(socket_path: str) -> AsyncIterator[httpx.AsyncClient]:
    """Plain httpx over the socket, for what the official client does not expose (headers, raw frames)."""
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=socket_path), base_url=BASE_URL,
                                 timeout=30) as http:
        yield http


@pytest.fixture
async def client(socket_path: str) -> AsyncIterator[ContreeAsyncClient]:
    """The official contree-client: a token is required by the client, any string does for the local engine."""
    http = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=socket_path), timeout=30)
    try:
        yield ContreeAsyncClient("local-test-token", base_url=BASE_URL, httpx_client=http)
    finally:
        await http.aclose()
