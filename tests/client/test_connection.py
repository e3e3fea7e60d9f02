"""Connecting for real: the embedded engine over its socket, a token-guarded TCP engine standing in for a
hosted Contree, and every way it can go wrong, with the reconnecting state a UI shows meanwhile."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from contree_client.profiles import Profile

from contree_tui.client.connection import (
    ConnectionProblem,
    EngineUnavailable,
    ServerUnreachable,
    TokenRejected,
    connect,
    embedded_target,
    open_connection,
    resolve_target,
)
from contree_tui.client.embedded import engine_pid
from contree_tui.client.observable import Observable
from contree_tui.client.reconnect import Backoff, ConnectionState, LinkState
from tests.client.conftest import FAST, TcpEngine, free_port, stop_engine
from tests.client.test_profiles import write_auth_ini


def kinds(status: Observable[ConnectionState]) -> list[LinkState]:
    return [s.state for s in status.history]


async def test_embedded_by_default(engine_dir: Path) -> None:
    async with await open_connection(state_dir=engine_dir, backoff=FAST) as conn:
        assert conn.target.embedded and conn.socket == engine_dir / "engine.sock"
        assert conn.status.value == ConnectionState.connected()
        assert conn.identity, "whoami's token_uuid names the engine's namespace"
        me = await conn.call(conn.client.whoami)
        assert me.permissions["spawn"] is True
        key = conn.cache_key
    async with await open_connection(state_dir=engine_dir, backoff=FAST) as again:
        assert again.cache_key == key and key.startswith("embedded-")


async def test_a_profile_with_the_right_token_connects(tcp_engine: TcpEngine, clean_env: Path) -> None:
    await tcp_engine.start()
    write_auth_ini(clean_env, [Profile(name="local", url=tcp_engine.url, token=tcp_engine.token)])
    async with await open_connection("local", backoff=FAST) as conn:
        assert not conn.target.embedded and conn.socket is None
        images = await conn.call(lambda: conn.client.list_images(tag="busybox"))
        assert images.images


async def test_a_rejected_token_says_so(tcp_engine: TcpEngine, clean_env: Path) -> None:
    await tcp_engine.start()
    write_auth_ini(clean_env, [Profile(name="stale", url=tcp_engine.url, token="not-the-token")])
    with pytest.raises(TokenRejected) as caught:
        await open_connection("stale", backoff=FAST)
    message = str(caught.value)
    assert "profile 'stale'" in message and "rejected the token" in message and "HTTP 401" in message
    assert "not-the-token" not in message


async def test_an_unreachable_server_reconnects_then_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("CONTREE_TOKEN", "t")
    monkeypatch.setenv("CONTREE_URL", url)
    status = Observable(ConnectionState.connecting())
    with pytest.raises(ServerUnreachable) as caught:
        await open_connection(backoff=Backoff(delays=(0.05, 0.1), max_attempts=3, jitter=0), status=status)
    assert isinstance(caught.value, ConnectionProblem)
    assert url in str(caught.value) and "gave up after 4 attempts" in str(caught.value)
    assert kinds(status) == [LinkState.CONNECTING, *[LinkState.RECONNECTING] * 3, LinkState.FAILED]
    retries = status.history[1:4]
    assert [(s.attempt, s.delay) for s in retries] == [(1, 0.05), (2, 0.1), (3, 0.1)]
    assert all("connect" in s.reason.lower() for s in retries), retries
    assert status.value.describe().startswith("disconnected:")


async def test_reconnecting_until_the_server_comes_up(tcp_engine: TcpEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTREE_TOKEN", tcp_engine.token)
    monkeypatch.setenv("CONTREE_URL", tcp_engine.url)
    status = Observable(ConnectionState.connecting())
    connecting = asyncio.create_task(
        open_connection(backoff=Backoff(delays=(0.1,), max_attempts=300, jitter=0), status=status))
    await status.wait_for(lambda s: s.state is LinkState.RECONNECTING, timeout=10)
    assert "reconnecting (attempt 1" in status.value.describe()
    await tcp_engine.start()
    async with await asyncio.wait_for(connecting, 30) as conn:
        assert conn.status is status and status.value == ConnectionState.connected()
        assert kinds(status)[-2:] == [LinkState.RECONNECTING, LinkState.CONNECTED]

        # the server goes away mid-session and comes back: calls wait for it instead of failing
        tcp_engine.stop()
        call = asyncio.create_task(conn.call(conn.client.whoami))
        await status.wait_for(lambda s: s.state is LinkState.RECONNECTING, timeout=10)
        await tcp_engine.start()
        assert (await asyncio.wait_for(call, 30)).permissions["spawn"]
        assert status.value == ConnectionState.connected()


async def test_the_embedded_engine_is_restarted_when_it_went_away(tmp_path: Path) -> None:
    state_dir = tmp_path / "engine"
    try:
        async with await connect(embedded_target(state_dir), backoff=FAST) as conn:
            first = engine_pid(state_dir)
            stop_engine(state_dir)
            assert engine_pid(state_dir) is None
            me = await conn.call(conn.client.whoami)
            assert me.token_uuid == conn.identity, "the same state dir, the same namespace"
            assert engine_pid(state_dir) not in (None, first)
            assert LinkState.RECONNECTING in kinds(conn.status) and conn.status.value.state is LinkState.CONNECTED
    finally:
        stop_engine(state_dir)


async def test_an_engine_that_cannot_start_says_why(tmp_path: Path) -> None:
    state_dir = tmp_path / "engine"
    state_dir.mkdir()
    (state_dir / "layers").write_text("a file where the layer store should be")
    status = Observable(ConnectionState.connecting())
    with pytest.raises(EngineUnavailable, match="cannot use the engine state directory"):
        await connect(embedded_target(state_dir), backoff=FAST, engine_timeout=20, status=status)
    assert status.value.state is LinkState.FAILED and "could not start" in status.value.reason


async def test_a_wrong_url_path_is_not_mistaken_for_a_bad_token(tcp_engine: TcpEngine,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    await tcp_engine.start()
    monkeypatch.setenv("CONTREE_TOKEN", tcp_engine.token)
    monkeypatch.setenv("CONTREE_URL", tcp_engine.url + "/not-the-api")
    with pytest.raises(ConnectionProblem, match="is the url right"):
        await connect(resolve_target(), backoff=FAST)
