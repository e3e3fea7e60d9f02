"""`contree-tui engine serve`: the engine behind the Contree v1 API, on a Unix socket (and optionally TCP).

uvicorn serves the Starlette app (engine/http). The Unix socket is created here (api_socket.py), not by uvicorn,
which would chmod it 0666: ours is 0600 inside a 0700 dir, so only the owner reaches the API. TCP is opt-in and
always needs the bearer token from `<state>/engine.token`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import uvicorn

from contree_tui.engine.api_socket import bind_api_socket, remove_api_socket
from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.http.context import TOKEN_CLIENT
from contree_tui.engine.models import EngineError
from contree_tui.engine.rootless_entry import engine_host_pid
from contree_tui.engine.sandbox.syscalls import set_process_name
from contree_tui.engine.state_dir import StateDir

log = logging.getLogger("contree_tui.engine")

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


@dataclass(frozen=True)
class ServeOptions:
    state_dir: str | None = None
    listen: tuple[str, int] | None = None  # TCP host, port
    token: str | None = None


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise EngineError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8765")
    return host.strip("[]"), int(port)


def read_or_create_token(state: StateDir, given: str | None) -> str:
    if given:
        state.token_file.write_text(given)
    elif not state.token_file.exists():
        state.token_file.write_text(secrets.token_urlsafe(32))
    os.chmod(state.token_file, 0o600)
    return state.token_file.read_text().strip()


class TokenOnTcp:
    """Requests that arrive over TCP need `Authorization: Bearer <token>`; the Unix socket is guarded by
    its file mode instead."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        server = scope.get("server")
        # uvicorn reports a Unix socket as (path, None) (older releases: None); TCP has a port.
        if scope["type"] == "http" and server is not None and server[1] is not None:
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = json.dumps({"error": "missing or wrong bearer token", "status": 401}).encode()
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            scope = {**scope, TOKEN_CLIENT: True}  # a token holder: may use the engine, not read host paths
        await self.app(scope, receive, send)


class EngineServer(uvicorn.Server):
    """Ends running operations before connections close, so followers receive their `completion`."""

    def __init__(self, engine: Engine, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.engine = engine

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.engine.stop_runs("engine stopped")
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn re-raises the SIGTERM it caught once serving ends, which killed the process before
        serve()'s cleanup: the engine never closed (cgroups, socket and pid file left behind). A signal
        here means "stop", and stopping is done by then."""
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


def tcp_listener(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    return sock


def run(options: ServeOptions) -> None:
    """Serve until stopped, on uvloop when it is installed: the engine is one event loop doing all the
    bookkeeping of every run, and uvloop's loop (with uvicorn's httptools parser, also picked up when
    installed) roughly halves the per-request cost of asyncio's pure-Python one."""
    set_process_name("ct-engine")  # for ps, top and perf: the engine among other Python processes
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(options))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(options))


async def serve(options: ServeOptions, config: EngineConfig | None = None,
                ready: Callable[[StateDir], None] | None = None) -> None:
    from contree_tui.engine.http.app import create_app

    engine = await Engine.open(options.state_dir, config)
    state = engine.state
    try:
        await engine.ensure_busybox()  # first runs and tests get an image in milliseconds
    except EngineError as exc:
        log.warning("no built-in busybox:latest: %s", exc)
    listener, socket_paths = bind_api_socket(state)  # <state>/engine.sock, or a link to the runtime dir's
    sockets = [listener]
    try:
        app: ASGIApp = create_app(engine)
        if options.listen:
            token = read_or_create_token(state, options.token)
            sockets.append(tcp_listener(*options.listen))
            app = TokenOnTcp(app, token)
        state.pid_file.write_text(str(engine_host_pid()))
        # No proxy-header rewriting (nothing sits in front of a local engine) and no Server/Date headers:
        # per-request work the engine's one event loop is better without.
        server = EngineServer(engine, uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False,
                                                     timeout_graceful_shutdown=3, proxy_headers=False,
                                                     server_header=False, date_header=False))
        if ready is not None:
            asyncio.get_running_loop().call_soon(ready, state)
        log.info("engine serving on %s%s", state.socket,
                 f" and http://{options.listen[0]}:{options.listen[1]}" if options.listen else "")
        await server.serve(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
        remove_api_socket(socket_paths)
        with contextlib.suppress(FileNotFoundError):
            if state.pid_file.read_text().strip() == str(engine_host_pid()):
                state.pid_file.unlink()
        await engine.close()
