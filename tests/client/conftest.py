"""Client tests run against the real served engine: `contree-tui engine serve`, started on demand through
ensure_engine in a temporary state dir (once per test session), stopped with `engine stop` afterwards.

Every test gets a clean Contree environment (no profile, token or URL leaking in from the machine) and its own
XDG cache dir, so stat caches and known-blob tables never carry over between tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from contree_tui.client.connection import Connection, connect, embedded_target
from contree_tui.client.embedded import engine_answers, ensure_engine
from contree_tui.client.reconnect import Backoff

CLI = [sys.executable, "-m", "contree_tui.cli"]
CONTREE_ENV = ("CONTREE_PROFILE", "CONTREE_TOKEN", "CONTREE_URL", "CONTREE_PROJECT", "NEBIUS_API_KEY",
               "NEBIUS_AI_PROJECT")
FAST = Backoff(delays=(0.05, 0.1), max_attempts=3, jitter=0)


def stop_engine(state_dir: Path) -> None:
    subprocess.run([*CLI, "engine", "stop", "--state-dir", str(state_dir)], capture_output=True, timeout=60,
                   check=False)


def served_engine(prefix: str) -> Iterator[Path]:
    """A served engine for a test session (a short /tmp path: Unix socket paths stop at 107 bytes)."""
    root = Path(tempfile.mkdtemp(prefix=prefix)) / "engine"
    asyncio.run(ensure_engine(root))
    try:
        yield root
    finally:
        stop_engine(root)
        end_processes_naming(root)
        shutil.rmtree(root.parent, ignore_errors=True)


def end_processes_naming(root: Path, quiet: float = 0.3, timeout: float = 10.0) -> None:
    """Terminate what still names `root` on its command line until none has for `quiet` s. A client's
    on-demand restart (the TUI reconnecting after a test killed its engine) may have launched an engine just
    before the stop: it came up after it and outlived its state dir."""
    needle = str(root).encode()
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    termed: dict[int, float] = {}  # once each (a second SIGTERM makes uvicorn skip its cleanup), then SIGKILL
    while time.monotonic() < deadline:
        found = _processes_naming(needle)
        if found:
            quiet_since = None
            for pid in found:
                with contextlib.suppress(ProcessLookupError):
                    if pid not in termed:
                        os.kill(pid, signal.SIGTERM)
                        termed[pid] = time.monotonic()
                    elif time.monotonic() - termed[pid] > timeout / 2:
                        os.kill(pid, signal.SIGKILL)
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet:
            return
        time.sleep(0.05)


def _processes_naming(needle: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):  # gone meanwhile
                if needle in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
    return found


def isolate_contree_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No profile, token or URL from the machine; caches and $CONTREE_HOME in the test's own dir."""
    for name in CONTREE_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "contree-home"
    monkeypatch.setenv("CONTREE_HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return home


@pytest.fixture(scope="session")
def engine_dir() -> Iterator[Path]:
    yield from served_engine("ctc-")


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate_contree_env(tmp_path, monkeypatch)


@pytest.fixture
async def connection(engine_dir: Path) -> AsyncIterator[Connection]:
    conn = await connect(embedded_target(engine_dir), backoff=FAST)
    try:
        yield conn
    finally:
        await conn.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TcpEngine:
    """An engine served on 127.0.0.1:port with a bearer token, as a hosted Contree would be reached."""

    def __init__(self, state_dir: Path, port: int, token: str) -> None:
        self.state_dir = state_dir
        self.port = port
        self.token = token
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        log = self.state_dir.parent / "serve.log"
        with open(log, "ab") as stderr:
            self.process = subprocess.Popen(
                [*CLI, "engine", "serve", "--state-dir", str(self.state_dir), "--listen", f"127.0.0.1:{self.port}",
                 "--token", self.token], stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 30
        while not await engine_answers(self.state_dir / "engine.sock"):
            assert self.process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"the TCP engine did not start: {log.read_text()}"
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def tcp_engine() -> Iterator[TcpEngine]:
    root = Path(tempfile.mkdtemp(prefix="ctt-")) / "engine"
    engine = TcpEngine(root, free_port(), "test-token-" + os.urandom(4).hex())
    try:
        yield engine
    finally:
        engine.stop()
        shutil.rmtree(root.parent, ignore_errors=True)
