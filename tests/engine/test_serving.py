"""The engine as a service: on-demand start, reuse, status/stop, socket mode, TCP token, profiles."""

from __future__ import annotations

import asyncio
import os
import socket as socketlib
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from contree_tui.client.embedded import EngineStartError, engine_answers, engine_pid, ensure_engine

CLI = [sys.executable, "-m", "contree_tui.cli"]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env, check=False)


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[Path]:
    root = tmp_path / "engine"
    yield root
    _cli("engine", "stop", "--state-dir", str(root))


def _uds_client(sock: Path) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(sock)), base_url="http://engine",
                             headers={"Authorization": "Bearer local"}, timeout=30)


async def test_engine_starts_on_demand_and_a_second_client_reuses_it(state: Path) -> None:
    sock = await ensure_engine(state)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    pid = engine_pid(state)
    assert pid is not None
    assert await ensure_engine(state) == sock
    assert engine_pid(state) == pid, "the second client must reuse the running engine"
    status = _cli("engine", "status", "--state-dir", str(state))
    assert status.returncode == 0 and str(pid) in status.stdout
    stopped = _cli("engine", "stop", "--state-dir", str(state))
    assert stopped.returncode == 0, stopped.stderr
    assert engine_pid(state) is None and not await engine_answers(sock)
    assert _cli("engine", "status", "--state-dir", str(state)).returncode == 3


async def test_an_operation_outlives_the_client_that_started_it(state: Path) -> None:
    sock = await ensure_engine(state)
    script = (
        "import httpx, sys\n"
        f"c = httpx.Client(transport=httpx.HTTPTransport(uds={str(sock)!r}), base_url='http://engine',"
        " headers={'Authorization': 'Bearer x'})\n"
        "r = c.post('/v1/instances', json={'image': 'tag:busybox:latest', 'command': 'sleep 1; echo survived',"
        " 'shell': True})\n"
        "print(r.json()['uuid'])\n"
    )
    async with _uds_client(sock) as client:
        images = (await client.get("/v1/images", params={"tag": "busybox"})).json()["images"]
        assert images, "a served engine provides busybox:latest"
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                              check=True)
        op = done.stdout.strip()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            body = (await client.get(f"/v1/operations/{op}")).json()
            if body["status"] in ("SUCCESS", "FAILED", "CANCELLED"):
                break
            await asyncio.sleep(0.1)
        assert body["status"] == "SUCCESS"
        assert body["metadata"]["result"]["stdout"]["value"] == "survived\n"


def _free_port() -> int:
    with socketlib.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_tcp_needs_the_token_and_the_profile_carries_it(state: Path, tmp_path: Path) -> None:
    from contree_client.profiles import load_profiles

    port = _free_port()
    env = {**os.environ, "CONTREE_HOME": str(tmp_path / "contree-home")}
    process = subprocess.Popen([*CLI, "engine", "serve", "--state-dir", str(state), "--listen",
                                f"127.0.0.1:{port}", "--write-profile", "local"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not await engine_answers(state / "engine.sock") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await engine_answers(state / "engine.sock"), "the Unix socket needs no token"
        auth = tmp_path / "contree-home" / "auth.ini"
        assert stat.S_IMODE(auth.stat().st_mode) == 0o600
        profiles, _ = load_profiles(auth)
        profile = profiles["local"]
        assert profile.url == f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=profile.url, timeout=10) as client:
            denied = await client.get("/v1/whoami")
            assert denied.status_code == 401 and denied.json()["status"] == 401
            wrong = await client.get("/v1/whoami", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            ok = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {profile.token}"})
            assert ok.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=20)


async def test_an_engine_that_cannot_start_says_why(tmp_path: Path) -> None:
    root = tmp_path / "engine"
    root.mkdir()
    (root / "layers").write_text("a file where the layer store should be")
    with pytest.raises(EngineStartError, match="cannot use the engine state directory"):
        await ensure_engine(root, timeout=20)
    log = (root / "engine.log").read_text()
    assert "Traceback" not in log
