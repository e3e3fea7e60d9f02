"""Smoke test of the installed console script in a real terminal (tmux): `contree-tui` with no subcommand
starts the TUI on the embedded engine (started on demand in the `--state-dir` given), shows the snapshot
tree, and quits on `q` with exit status 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.conftest import stop_engine


def tmux(server: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-L", server, *args], capture_output=True, text=True, timeout=30, env=env,
                          check=False)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="ctm-")) / "engine"
    try:
        yield root
    finally:
        stop_engine(root)
        shutil.rmtree(root.parent, ignore_errors=True)


def test_contree_tui_starts_shows_the_tree_and_quits_on_q(state_dir: Path, tmp_path: Path) -> None:
    script = shutil.which("contree-tui")
    assert script, "the console script is installed (pip install -e .)"
    assert shutil.which("tmux"), "tmux is installed (scripts/test installs it)"
    server = f"contree-tui-test-{os.getpid()}"  # a private tmux server: nothing else's sessions are touched
    status_file = tmp_path / "status"
    env = {**os.environ, "TERM": "xterm-256color"}
    command = f"{script} --state-dir {state_dir} -C {tmp_path}; echo $? > {status_file}"
    started = tmux(server, "new-session", "-d", "-s", "tui", "-x", "120", "-y", "36", command, env=env)
    assert started.returncode == 0, started.stderr
    try:
        screen = ""
        deadline = time.monotonic() + 60
        while "busybox:latest" not in screen:
            assert time.monotonic() < deadline, f"the tree never showed busybox:latest:\n{screen}"
            time.sleep(0.2)
            screen = tmux(server, "capture-pane", "-p", "-t", "tui").stdout
        assert "snapshots" in screen and "operations" in screen and "embedded" in screen, screen

        tmux(server, "send-keys", "-t", "tui", "q")
        deadline = time.monotonic() + 20
        while not status_file.exists():
            assert time.monotonic() < deadline, "q did not quit:\n" + tmux(server, "capture-pane", "-p").stdout
            time.sleep(0.1)
        assert status_file.read_text().strip() == "0"
    finally:
        tmux(server, "kill-server")
