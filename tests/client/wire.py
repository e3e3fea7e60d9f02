"""Test plumbing for the lineage and operation tests: a connection whose transport counts the requests it
sends (the server is the real engine; only the transport is wrapped), and runs that wait for their result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from contree_client.httpx import ContreeAsyncClient
from contree_client.models import OperationResponse, OperationStatus

from contree_tui.client.connection import EMBEDDED_TIMEOUT, IDENTITY, Connection, embedded_target
from contree_tui.client.embedded import ensure_engine
from tests.client.conftest import FAST


class CountingTransport(httpx.AsyncBaseTransport):
    """Passes every request to the real transport and keeps (method, path, query) of each."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def since(self, mark: int) -> list[httpx.Request]:
        """Requests sent after the first `mark` ones."""
        return self.requests[mark:]


def route(request: httpx.Request) -> str:
    """`GET /images` style, without the /v1 prefix and the query."""
    return f"{request.method} {request.url.path.removeprefix('/v1')}"


@asynccontextmanager
async def counted_connection(engine_dir: Path) -> AsyncIterator[tuple[Connection, CountingTransport]]:
    socket = await ensure_engine(engine_dir)
    transport = CountingTransport(httpx.AsyncHTTPTransport(uds=str(socket)))
    http = httpx.AsyncClient(transport=transport, timeout=EMBEDDED_TIMEOUT)
    target = embedded_target(engine_dir)
    client = ContreeAsyncClient(target.token, base_url=target.url, identity=IDENTITY, httpx_client=http)
    connection = Connection(target, client, http, backoff=FAST, socket=socket)
    connection.identity = (await client.whoami()).token_uuid or ""
    try:
        yield connection, transport
    finally:
        await connection.aclose()


async def run_shell(connection: Connection, image: str, command: str, **options: object) -> OperationResponse:
    """A non-disposable shell run on `image`, waited for; it must succeed."""
    client = connection.client
    spawned = await client.spawn_instance(command, image, shell=True, disposable=False, timeout=60,
                                          **options)  # type: ignore[arg-type]
    done = await client.wait_operation(spawned.uuid, timeout=120)
    assert done.status == OperationStatus.SUCCESS, done.error
    return done


def result_image(op: OperationResponse) -> str:
    image = op.result.image  # type: ignore[union-attr]
    assert isinstance(image, str)
    return image
