"""The embedded engine from the client's side: find it, or start it detached and wait until it answers.

Only the wire contract is shared with the engine: its socket's location (contree_tui.paths) and its
command line. A second client finds the running engine and reuses it; operations live in the engine, so
they survive the client that started it.
"""

from __future__ import annotations

import asyncio
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


def _alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def engine_pid(root: Path) -> int | None:
    """The pid recorded by a live engine serving `root`, else None."""
    try:
        pid = int((root / PID_NAME).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


# Started through a short-lived launcher so the engine is nobody's child: it outlives this client, and no
# client is left with a zombie to reap.
_LAUNCHER = (
    "import subprocess, sys\n"
    "log = open(sys.argv[1], 'ab')\n"
    "p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=log,"
    " start_new_session=True, close_fds=True)\n"
    "print(p.pid)\n"
)


def _start_detached(root: Path) -> int:
    command = [sys.executable, "-m", "contree_tui.cli", "engine", "serve", "--state-dir", str(root)]
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, str(root / LOG_NAME), *command],
                          capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        raise EngineStartError(f"the embedded engine could not be launched: {done.stderr.strip()}")
    return int(done.stdout)


def _log_size(root: Path) -> int:
    try:
        return (root / LOG_NAME).stat().st_size
    except OSError:
        return 0


def _log_tail(root: Path, since: int = 0, lines: int = 5) -> str:
    """What the engine logged after byte `since` (this start's, not an earlier one's: the log is appended to
    across starts): its own refusal whole when it made one (main.py prints `contree-tui: …`, and a missing
    prerequisite is a list of several lines), else the last `lines` lines."""
    try:
        with open(root / LOG_NAME, "rb") as fh:
            fh.seek(since)
            text = fh.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    refusal = [i for i, line in enumerate(text) if line.startswith("contree-tui: ")]
    tail = text[refusal[-1]:] if refusal else text[-lines:]
    # the caller says who is speaking
    return "\n".join(line.removeprefix("contree-tui: ") for line in tail)


async def ensure_engine(state_dir: str | Path | None = None, *, timeout: float = 20.0) -> Path:
    """The socket of a running engine for `state_dir`, starting one detached if none answers."""
    root = engine_root(state_dir)
    socket = engine_socket(root)
    if await engine_answers(socket):
        return socket
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission: the path is the news
        why = "it is not a directory" if root.exists() and not root.is_dir() else exc.strerror
        raise EngineStartError(f"cannot use {root} as the engine's state directory: {why}") from None
    logged = _log_size(root)
    pid = await asyncio.to_thread(_start_detached, root)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await engine_answers(socket, timeout=1.0):
            return socket
        if not _alive(pid):
            # It exited: another client's engine may have won the race for the state dir, or it failed.
            if engine_pid(root) is not None and await engine_answers(socket, timeout=2.0):
                return socket
            # one line for a one-line refusal; a longer one (a missing prerequisite's list) keeps its lines
            raise EngineStartError(f"the embedded engine could not start: {_log_tail(root, logged) or 'no log'}")
        await asyncio.sleep(0.05)
    raise EngineStartError(f"the embedded engine did not answer on {socket} within {timeout:g} s\n"
                           f"{_log_tail(root, logged)}")
