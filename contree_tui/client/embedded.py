"""The embedded engine from the client's side: find it, or start it detached and wait until it answers.

Only the wire contract is shared with the engine: its socket's location (contree_tui.paths) and its
command line. A second client finds the running engine and reuses it; operations live in the engine, so
they survive the client that started it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from contree_tui.paths import LOG_NAME, PID_NAME, engine_root, engine_socket


class EngineStartError(RuntimeError):
    """The embedded engine could not be started; the message says why (from its log)."""


async def engine_answers(socket: Path, timeout: float = 2.0) -> bool:
    if not socket.exists():
        return False
    transport = httpx.AsyncHTTPTransport(uds=str(socket))
    try:
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            response = await client.get("http://engine/v1/whoami", headers={"Authorization": "Bearer local"})
            return response.status_code == 200
    except httpx.HTTPError:
        return False


def engine_pid(root: Path) -> int | None:
    """The pid recorded by a live engine serving `root`, else None."""
    try:
        pid = int((root / PID_NAME).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _log_tail(root: Path, lines: int = 5) -> str:
    try:
        text = (root / LOG_NAME).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


async def ensure_engine(state_dir: str | Path | None = None, *, timeout: float = 20.0) -> Path:
    """The socket of a running engine for `state_dir`, starting one detached if none answers."""
    root = engine_root(state_dir)
    socket = engine_socket(root)
    if await engine_answers(socket):
        return socket
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOG_NAME, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "contree_tui.cli", "engine", "serve", "--state-dir", str(root)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            close_fds=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await engine_answers(socket, timeout=1.0):
            return socket
        code = process.poll()
        if code is not None and engine_pid(root) is None:
            # It exited: another client's engine may have won the race for the state dir, or it failed.
            if await engine_answers(socket, timeout=1.0):
                return socket
            reason = _log_tail(root) or f"exit status {code}"
            raise EngineStartError(f"the embedded engine could not start:\n{reason}")
        await asyncio.sleep(0.05)
    raise EngineStartError(f"the embedded engine did not answer on {socket} within {timeout:g} s\n"
                           f"{_log_tail(root)}")
