"""Where the engine has no network to give (no pasta; rootless with /dev/net/tun 0600, as on this project's VM),
every networked run is refused: `run` and `engine run` take `--no-network`, and the refusal names it, so a user
with no administrator at hand still runs (seen as a normal user following the README, #14). The engine here has
no pasta (CONTREE_TUI_PASTA empty), which is what an unusable tun amounts to, without touching the machine's
/dev/net/tun that other tests widen and restore."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from contree_tui.engine.sandbox.network import ENV_PASTA
from tests.client.conftest import CLI, served_engine


@pytest.fixture
def offline_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv(ENV_PASTA, "")  # the engine started on demand inherits it: no pasta, no network
    yield from served_engine("ct-nonet-")


def cli(state: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / "cache")}
    return subprocess.run([*CLI, *args[:1], *(["--state-dir", str(state)] if args[0] != "engine" else []),
                           *args[1:]], capture_output=True, text=True, timeout=120, check=False, cwd=folder, env=env)


def test_no_network_runs_where_networking_is_refused_and_the_refusal_names_it(offline_engine: Path,
                                                                               tmp_path: Path) -> None:
    state = ["--state-dir", str(offline_engine)]
    refused = cli(offline_engine, tmp_path, "engine", "run", *state, "--", "echo hi")
    assert refused.returncode == 1 and "--no-network" in refused.stderr, refused.stderr
    offline = cli(offline_engine, tmp_path, "engine", "run", *state, "--no-network", "--", "echo hi; ip link | wc -l")
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout.splitlines()[0] == "hi"
    assert int(offline.stdout.splitlines()[1]) <= 2, offline.stdout  # loopback only (2 lines of `ip link`)
    folder_run = cli(offline_engine, tmp_path, "run", "--no-sync", "--no-network", "--", "echo from run")
    assert folder_run.returncode == 0 and folder_run.stdout == "from run\n", folder_run.stderr
    folder_refused = cli(offline_engine, tmp_path, "run", "--no-sync", "--", "echo from run")
    assert folder_refused.returncode != 0 and "--no-network" in folder_refused.stderr, folder_refused.stderr
