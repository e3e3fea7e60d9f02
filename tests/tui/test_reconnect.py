"""The TUI when Contree goes away under it, against real engines: the engine killed mid-run (in its own state
dir: the session's engine stays up for the other tests) and a network blip (the real engine, behind a transport
the test can cut). A banner says so while it lasts, the TUI reconnects (starting the embedded engine again
itself), the followed log resumes from its last event with no line lost or doubled, a run the engine was
executing when it died ends FAILED with the engine's reason, and every failure is a toast."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from contree_client.httpx import ContreeAsyncClient
from contree_client.models import OperationStatus
from textual.pilot import Pilot

from contree_tui.client.connection import EMBEDDED_TIMEOUT, IDENTITY, Connection, connect, embedded_target
from contree_tui.client.embedded import engine_pid, ensure_engine
from contree_tui.client.reconnect import Backoff, ConnectionState, LinkState
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.data import ContreeBackend
from contree_tui.tui.model import Operation, Stream
from contree_tui.tui.screens.main import MainScreen
from tests.client.conftest import served_engine, stop_engine
from tests.tui.frozen import WORKING, FrozenBackend, frozen_clock
from tests.tui.helpers import loaded, run_in_bar, until

SIZE = (140, 40)


@pytest.fixture
def own_engine() -> Iterator[Path]:
    """An engine of this test's own, in its own state dir: this test kills it."""
    yield from served_engine("ctr-")


def stdout_lines(screen: MainScreen, op: Operation) -> list[str]:
    return [text for stream, text in screen.buffers[op.uuid].lines if stream is Stream.STDOUT]


def toasts(pilot: Pilot[None], title: str) -> list[str]:
    return [n.message for n in pilot.app._notifications if title in (n.title or "")]


async def started(pilot: Pilot[None], screen: MainScreen, command: str, first_line: str) -> Operation:
    """Run `command` from the bar; its operation once `first_line` is in its log."""
    known = set(screen.table.operations)
    await run_in_bar(pilot, command)
    await until(pilot, lambda: set(screen.table.operations) - known, what="the run's row")
    [uuid] = set(screen.table.operations) - known
    op = screen.table.operations[uuid]
    await until(pilot, lambda: first_line in stdout_lines(screen, op), what=f"{first_line!r} in the log")
    return op


async def test_the_banner_says_what_the_link_is_doing_and_each_outage_is_a_toast() -> None:
    backend = FrozenBackend()
    app = ContreeApp(backend, working=WORKING, clock=frozen_clock)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: app.main.tree.node_for(WORKING) is not None, what="the tree")
        banner = app.main.banner
        assert not banner.display

        backend.status.set(ConnectionState.reconnecting(3, 2.0, "cannot connect: refused"))
        await until(pilot, lambda: banner.display, what="the banner")
        assert str(banner.render()).startswith("⚠ engine unreachable — reconnecting in 2 s (attempt 3)…")
        assert "cannot connect: refused" in str(banner.render()) and not banner.has_class("-failed")
        backend.status.set(ConnectionState.reconnecting(4, 4.0, "cannot connect: refused"))
        backend.status.set(ConnectionState.failed("cannot connect: refused"))
        await until(pilot, lambda: banner.has_class("-failed"), what="the banner to say it gave up")
        assert "trying again every 2 s" in str(banner.render())
        backend.status.set(ConnectionState.connected())
        await until(pilot, lambda: not banner.display, what="the banner to go")

        assert toasts(pilot, "connection lost") == ["cannot connect: refused; reconnecting"], "one per outage"
        assert len(toasts(pilot, "cannot reconnect")) == 1 and len(toasts(pilot, "reconnected")) == 1


async def test_a_profile_that_does_not_exist_is_no_outage_banner() -> None:
    app = ContreeApp(profile="no-such-profile")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: any("connecting failed" in (n.title or "") for n in app._notifications),
                    what="the toast")
        assert app.main.status_bar.link.state is LinkState.FAILED
        assert not app.main.banner.display and not toasts(pilot, "connection lost")


@pytest.mark.parametrize(("how", "reason"), [("kill", "engine restarted"), ("stop", "engine stopped")])
async def test_an_engine_gone_mid_run_shows_a_banner_fails_the_run_with_the_reason_and_comes_back(
        own_engine: Path, tmp_path: Path, how: str, reason: str) -> None:
    """`kill`: a crash, nothing gets to say goodbye (the restarted engine's recovery fails the run); `stop`:
    `engine stop`, which fails its runs on the way out."""
    app = ContreeApp(state_dir=own_engine, folder=tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        banner = screen.banner
        assert not banner.display, "no banner while connected"
        op = await started(pilot, screen, "for i in $(seq 1 400); do echo n$i; sleep 0.05; done", "n3")

        first = engine_pid(own_engine)
        assert first is not None
        # What the banner said while it showed: under load the TUI can be back before a poll sees it.
        shown: list[str] = []
        watch = banner.watch_state

        def record() -> None:
            watch()
            if banner.showing:
                shown.append(str(banner.render()))

        banner.watch_state = record  # type: ignore[method-assign]
        if how == "kill":
            os.kill(first, signal.SIGKILL)
        else:
            await asyncio.to_thread(stop_engine, own_engine)  # in a thread: the app shares this event loop

        await until(pilot, lambda: shown, what="the banner")
        assert "engine unreachable" in shown[0] and "attempt" in shown[0]
        await until(pilot, lambda: op.status.is_terminal(), timeout=60, what="the run to end")
        assert op.status is OperationStatus.FAILED and reason in (op.error or ""), op
        await until(pilot, lambda: not banner.display, timeout=60, what="the banner to go")
        assert engine_pid(own_engine) not in (None, first), "the TUI started the engine again"
        assert screen.backend is not None and screen.backend.status.value.state is LinkState.CONNECTED

        lines = stdout_lines(screen, op)
        assert lines == [f"n{i}" for i in range(1, len(lines) + 1)], "what the run printed, once, in order"
        assert reason in screen.buffers[op.uuid].lines[-1][1], "the exit summary says why"
        assert any(reason in m for m in toasts(pilot, "run failed")), "the failure is a toast"
        assert toasts(pilot, "connection lost"), "so is the outage"

        # the engine is back: the next command runs
        before = screen.position.working
        await run_in_bar(pilot, "echo after > /after")
        await until(pilot, lambda: screen.position.working != before, timeout=60, what="a run after the restart")
        assert not banner.display


class CuttableTransport(httpx.AsyncBaseTransport):
    """The real transport, with a switch that drops the link the way a network blip does: while `cut`, new
    requests cannot connect and open responses (the event stream) break at their next chunk."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.cut = False
        self.broken_streams = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.cut:
            raise httpx.ConnectError("network is unreachable (cut by the test)", request=request)
        response = await self.inner.handle_async_request(request)
        return httpx.Response(response.status_code, headers=response.headers, extensions=response.extensions,
                              stream=CuttableStream(response.stream, self), request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class CuttableStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, transport: CuttableTransport) -> None:
        self.inner = inner
        self.transport = transport

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            if self.transport.cut:
                self.transport.broken_streams += 1
                raise httpx.ReadError("connection reset (cut by the test)")
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_network_blip_is_a_banner_and_the_log_resumes_with_no_line_lost_or_doubled(
        tui_engine_dir: Path, tmp_path: Path) -> None:
    socket = await ensure_engine(tui_engine_dir)
    transport = CuttableTransport(httpx.AsyncHTTPTransport(uds=str(socket)))
    http = httpx.AsyncClient(transport=transport, timeout=EMBEDDED_TIMEOUT)
    target = embedded_target(tui_engine_dir)
    client = ContreeAsyncClient(target.token, base_url=target.url, identity=IDENTITY, httpx_client=http)
    # a backoff long enough to outlast the blip (about 4 s) without giving up
    connection = Connection(target, client, http, backoff=Backoff(delays=(0.2, 0.5, 1.0), max_attempts=40),
                            socket=socket)
    connection.identity = (await client.whoami()).token_uuid or ""
    backend = ContreeBackend(connection, tmp_path)
    observer = await connect(target)  # the test's own view of the engine, not through the cut
    try:
        app = ContreeApp(backend, folder=tmp_path)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            screen = await loaded(pilot)
            op = await started(pilot, screen, "for i in $(seq 1 40); do echo b$i; sleep 0.05; done", "b3")

            transport.cut = True
            await until(pilot, lambda: screen.banner.display, what="the banner")
            assert "cut by the test" in str(screen.banner.render())
            done = await observer.client.wait_operation(op.uuid, timeout=60)  # it ends while the link is down
            assert done.status == OperationStatus.SUCCESS
            assert not screen.buffers[op.uuid].complete and transport.broken_streams >= 1, (
                "the stream broke mid-run and the end has not reached the TUI yet")

            transport.cut = False
            await until(pilot, lambda: op.status is OperationStatus.SUCCESS, timeout=60, what="the run's end")
            await until(pilot, lambda: not screen.banner.display, what="the banner to go")
            assert stdout_lines(screen, op) == [f"b{i}" for i in range(1, 41)], "no line lost or doubled"
            assert any("cut by the test" in m for m in toasts(pilot, "connection lost"))
            assert toasts(pilot, "reconnected")
    finally:
        await observer.aclose()
        await backend.aclose()
