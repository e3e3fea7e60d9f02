"""A plain-HTTP proxy in front of a test registry that misbehaves on demand (busy, stalls, redirects,
canned answers): the registry's content stays real, only the transport goes wrong."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class FaultProxy:
    """A plain-HTTP proxy on 127.0.0.1 in front of a registry that misbehaves on demand, one connection per
    request (it forces `Connection: close`):

      busy: {"/blobs/": 2} → the next 2 requests whose path contains "/blobs/" answer 429, Retry-After: 1
      stall_all → accept connections and never answer
      stall_blob_after: N → blob responses stop after N body bytes and stay open
      redirect_blobs → blob GETs answer 307 to the registry itself (as registries redirect to storage)
      canned: {"/manifests/": b"HTTP/1.1 200 OK\r\n..."} → that response, as is, for matching paths
    """

    upstream: str  # "127.0.0.1:PORT"
    busy: dict[str, int] = field(default_factory=dict)
    retry_after: str = "1"
    busy_status: int = 429
    stall_all: bool = False
    stall_blob_after: int | None = None
    redirect_blobs: bool = False
    canned: dict[str, bytes] = field(default_factory=dict)  # path substring → a whole raw HTTP response
    seen: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.base_events.Server | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, repo: str, tag: str = "latest") -> str:
        return f"docker://{self.host}/{repo}:{tag}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(1)
            if first == b"\x16":  # a TLS ClientHello: answer as Go's plain-HTTP server does, at once
                writer.write(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent a TLS handshake to an HTTP server.\n")
                await writer.drain()
                writer.close()
                return
            head = first + await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        try:
            await self._handle(head, reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        self.seen.append(f"{method} {path}")
        if self.stall_all:
            await asyncio.sleep(3600)
        for pattern, left in self.busy.items():
            if pattern in path and left > 0:
                self.busy[pattern] = left - 1
                writer.write(f"HTTP/1.1 {self.busy_status} Busy\r\nRetry-After: {self.retry_after}\r\n"
                             "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
                await writer.drain()
                return
        for pattern, response in self.canned.items():
            if pattern in path:
                writer.write(response)
                await writer.drain()
                return
        is_blob = "/blobs/" in path and method == "GET"
        if is_blob and self.redirect_blobs and "redirected=1" not in path:
            writer.write(f"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{self.host}{path}?redirected=1\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            return
        headers = [h for h in header_lines if h and not h.lower().startswith(("connection:", "host:"))]
        up_host, _, up_port = self.upstream.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(up_host.strip("[]"), int(up_port))
        upstream_path = path.replace("?redirected=1", "")
        up_writer.write((f"{method} {upstream_path} HTTP/1.1\r\nHost: {self.upstream}\r\nConnection: close\r\n"
                         + "".join(h + "\r\n" for h in headers) + "\r\n").encode("latin-1"))
        await up_writer.drain()
        body_pump = asyncio.create_task(self._pump(reader, up_writer))  # a request body (skopeo's PUT/PATCH)
        try:
            await self._relay(up_reader, writer, is_blob)
        finally:
            body_pump.cancel()
            up_writer.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()

    async def _relay(self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, is_blob: bool) -> None:
        response_head = await up_reader.readuntil(b"\r\n\r\n")
        writer.write(response_head)
        sent = 0
        while True:
            chunk = await up_reader.read(65536)
            if not chunk:
                break
            if is_blob and self.stall_blob_after is not None and sent + len(chunk) > self.stall_blob_after:
                writer.write(chunk[:self.stall_blob_after - sent])
                await writer.drain()
                await asyncio.sleep(3600)
            writer.write(chunk)
            sent += len(chunk)
            await writer.drain()
