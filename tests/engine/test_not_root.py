"""Started by a normal user, the embedded engine refuses up front and says what it needs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
USER = "contree-tui-test"

OPEN_ENGINE = "import asyncio, sys; from contree_tui.engine.engine import Engine; asyncio.run(Engine.open(sys.argv[1]))"


def _as_user(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": f"/home/{USER}",
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(["runuser", "-u", USER, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv],
                          capture_output=True, text=True, cwd="/", timeout=60)


@pytest.fixture(scope="module")
def unprivileged_python() -> Iterator[str]:
    """A Python the test user can run, with the repo importable; the user is created (and removed) here."""
    if os.geteuid() != 0:
        pytest.skip("creating a test user needs root")
    for tool in ("useradd", "userdel", "runuser"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing")
    created = subprocess.run(["id", USER], capture_output=True).returncode != 0
    if created:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True, capture_output=True)
    try:
        if _as_user("test", "-r", str(REPO / "contree_tui" / "engine" / "engine.py")).returncode != 0:
            pytest.skip(f"{USER} cannot read {REPO}: the repo is not readable by other users")
        for python in dict.fromkeys((sys.executable, "/usr/bin/python3")):
            probe = _as_user(python, "-c", "import contree_tui.engine.engine, contree_tui.cli")
            if probe.returncode == 0:
                yield python
                break
        else:
            pytest.skip(f"no Python that {USER} can run imports contree_tui ({sys.executable} sits under /root?)")
    finally:
        if created:
            subprocess.run(["userdel", "-r", USER], capture_output=True)


def test_engine_open_as_a_normal_user_names_what_is_missing(unprivileged_python: str) -> None:
    state = Path("/tmp") / f"contree-tui-notroot-{uuid.uuid4().hex}"
    run = _as_user(unprivileged_python, "-c", OPEN_ENGINE, str(state))
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("contree_tui.engine.models.EngineError: the embedded engine needs root"), run.stderr
    assert "namespaces" in last and "--profile" in last
    assert not state.exists(), "the refusal comes before anything is created"


def test_cli_as_a_normal_user_prints_one_line_and_exits_2(unprivileged_python: str) -> None:
    state = Path("/tmp") / f"contree-tui-notroot-{uuid.uuid4().hex}"
    run = _as_user(unprivileged_python, "-m", "contree_tui.cli", "engine", "run", "--state-dir", str(state),
                   "echo", "hi")
    assert run.returncode == 2, run
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("contree-tui: the embedded engine needs root"), run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert not state.exists()
