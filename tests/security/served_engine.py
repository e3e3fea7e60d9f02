"""A real engine process (`contree-tui engine serve`) for the attack tests, and a `whoami` latency watch.

The engine runs in its own process, not on the test's event loop: an attack that freezes the engine's loop
then shows up as slow answers the test can measure and assert on, instead of freezing the test itself.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from contree_tui.engine.state_dir import StateDir

BASE_URL = "http://engine"
WHOAMI_BUDGET = 0.2  # seconds: what a cheap request may take while hostile helpers run (issue #10)


@dataclass(frozen=True)
class ServedEngine:
    state: Path
    socket: Path
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def served_engine() -> Iterator[ServedEngine]:
    """One engine process per test module, in a short temp dir (Unix socket paths stop at 107 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="ctsec-"))
    state = root / "state"
    log = open(root / "engine.log", "wb")  # noqa: SIM115 - closed below, after the process
    process = subprocess.Popen([sys.executable, "-m", "contree_tui.cli", "engine", "serve", "--state-dir",
                                str(state)], stdout=log, stderr=subprocess.STDOUT)
    served = ServedEngine(state, state / "engine.sock", process)
    try:
        deadline = time.monotonic() + 30
        while not _answers(served.socket):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"engine did not start: {(root / 'engine.log').read_text(errors='replace')}")
            time.sleep(0.05)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        _remove_engine_cgroups(state)
        shutil.rmtree(root, ignore_errors=True)


def _remove_engine_cgroups(state: Path) -> None:
    """The engine leaves its empty per-state-dir parent group in each v1 controller (bench/common.py)."""
    name = f"contree-tui-{StateDir(state).id}"
    for controller in ("memory", "cpu", "pids"):
        try:
            (Path("/sys/fs/cgroup") / controller / name).rmdir()
        except OSError:
            pass


def _answers(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url=BASE_URL, timeout=2) as http:
            return http.get("/v1/whoami").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
async def served_api(served_engine: ServedEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(served_engine.socket)),
                                 base_url=BASE_URL, timeout=30) as http:
        yield http


async def busybox(api: httpx.AsyncClient) -> str:
    found = (await api.get("/v1/images", params={"tag": "busybox:latest"})).json()["images"]
    assert found, "a served engine provides busybox:latest"
    return str(found[0]["uuid"])


async def upload(api: httpx.AsyncClient, data: bytes) -> str:
    answer = await api.post("/v1/files", content=data)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["uuid"])


async def run(api: httpx.AsyncClient, image: str, script: str, files: dict[str, Any] | None = None) -> str:
    """Run a shell script (non-disposable) and return the image it made."""
    spawned = await api.post("/v1/instances", json={"image": image, "command": script, "shell": True,
                                                     "files": files or {}})
    assert spawned.status_code == 201, spawned.text
    op_uuid = spawned.json()["uuid"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = (await api.get(f"/v1/operations/{op_uuid}")).json()
        if body["status"] in ("SUCCESS", "FAILED", "CANCELLED"):
            assert body["status"] == "SUCCESS", body
            return str(body["result"]["image"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"operation {op_uuid} did not end within 60 s")


# The watcher runs in a process of its own: in the test's process it would share an event loop (and the
# GIL) with the test's own reading of large answers, and measure that instead of the engine.
_WATCHER = """
import json, select, sys, time
import httpx
samples = []
with httpx.Client(transport=httpx.HTTPTransport(uds=sys.argv[1]), base_url="http://engine", timeout=10) as http:
    while True:
        started = time.perf_counter()
        try:
            assert http.get("/v1/whoami").status_code == 200
        except httpx.TimeoutException:
            pass
        samples.append(time.perf_counter() - started)
        if len(samples) == 1:
            print("ready", flush=True)
        if select.select([sys.stdin], [], [], 0.01)[0]:
            break
print(json.dumps(samples), flush=True)
"""


@dataclass
class LatencyWatch:
    """`GET /v1/whoami` every ~10 ms from a separate process, until the block ends; the slowest answer wins."""

    samples: list[float] = field(default_factory=list)

    @property
    def worst(self) -> float:
        return max(self.samples, default=float("inf"))


@asynccontextmanager
async def whoami_watch(served: ServedEngine) -> AsyncIterator[LatencyWatch]:
    """Measure `whoami` latency for the duration of the block (from one first answer on)."""
    watch = LatencyWatch()
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", _WATCHER, str(served.socket),
                                                   stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    try:
        assert (await asyncio.wait_for(process.stdout.readline(), 30)).strip() == b"ready"
        yield watch
    finally:
        process.stdin.write(b"stop\n")
        await process.stdin.drain()
        output = await asyncio.wait_for(process.stdout.readline(), 30)
        await process.wait()
    watch.samples = json.loads(output)
