"""`engine serve --write-profile NAME` as a stranger uses it: in a fresh $CONTREE_HOME the profile becomes the
active one, so seed 002's `ContreeSync()` (no profile named anywhere) reaches this engine, not the hosted
default URL; a profile the user made active before stays active and the message says how to pick ours."""

from __future__ import annotations

import configparser
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contree_tui.cli.profile_file import write_profile
from tests.client.conftest import CLI, CONTREE_ENV, stop_engine

SDK_SCRIPT = """
from contree_sdk import ContreeSync
client = ContreeSync()
base = client.images.pull("busybox:latest")
print(base.run(shell="echo reached", disposable=False).wait().stdout.strip())
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, str], subprocess.Popen[str]]]:
    """`engine serve --listen … --write-profile local` with an empty CONTREE_HOME and no CONTREE_* variables."""
    state = Path(os.environ.get("TMPDIR", "/tmp")) / f"cts-prof-{os.getpid()}-{time.monotonic_ns()}"
    env = {k: v for k, v in os.environ.items() if k not in (*CONTREE_ENV, "CONTREE_BASE_URL")}
    env["CONTREE_HOME"] = str(tmp_path / "home")
    port = _free_port()
    proc = subprocess.Popen([*CLI, "engine", "serve", "--state-dir", str(state), "--listen", f"127.0.0.1:{port}",
                             "--write-profile", "local"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield env, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        stop_engine(state)
        subprocess.run(["rm", "-rf", str(state)], check=False)


def test_the_sdk_with_no_profile_named_reaches_the_served_engine(served: tuple[dict[str, str],
                                                                           subprocess.Popen[str]]) -> None:
    pytest.importorskip("contree_sdk", reason="contree-sdk is not installed (pip install '.[test]')")
    env, _ = served
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", SDK_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]  # before: ContreeTransportError on api.tokenfactory...
    assert done.stdout == "reached\n"


def test_an_active_profile_the_user_chose_stays_active(tmp_path: Path) -> None:
    auth = tmp_path / "auth.ini"
    auth.write_text("[DEFAULT]\nprofile = hosted\n\n[profile:hosted]\nurl = https://h.example\ntoken = t\n")
    written = write_profile("local", "http://127.0.0.1:1", "tok", home=tmp_path)
    config = configparser.ConfigParser()
    config.read(auth)
    assert config.defaults()["profile"] == "hosted" and written.active == "hosted"
    assert config["profile:local"]["url"] == "http://127.0.0.1:1"
    assert "CONTREE_PROFILE=local" in written.message()
    again = write_profile("local", "http://127.0.0.1:2", "tok", home=tmp_path / "fresh")
    assert again.active == "local" and "the active one" in again.message()
