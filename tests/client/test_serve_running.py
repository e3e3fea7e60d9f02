"""`engine serve --listen … --write-profile NAME` while an engine (started on demand by any command) serves the
state dir: one line that says how to stop it, exit 2, and no profile written naming a port nobody listens on
(before: the profile was written, then "another engine is already using …"; seen following the README, #14)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tests.client.conftest import CLI


def test_serve_on_a_served_state_dir_says_how_to_stop_it_and_writes_no_profile(engine_dir: Path,
                                                                                tmp_path: Path) -> None:
    with socket.socket() as probe:  # a free port (only for the URL: nothing must listen on it)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tmp_path / "contree-home"
    done = subprocess.run([*CLI, "engine", "serve", "--state-dir", str(engine_dir), "--listen", f"127.0.0.1:{port}",
                           "--write-profile", "local"], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "CONTREE_HOME": str(home)})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "contree-tui engine stop" in lines[0] and str(engine_dir) in lines[0], done.stderr
    assert not (home / "auth.ini").exists()
