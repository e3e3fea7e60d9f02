"""A headless command whose reader went away (`contree-tui engine status | head -1`, `... | less` quit early)
ends quietly with 141, as a shell reports a program killed by SIGPIPE: Python ignores SIGPIPE, so the write
raised BrokenPipeError and its traceback reached the user's terminal (seen as a normal user, #14)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_closed_stdout_ends_the_command_with_141_and_no_traceback(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write: every write is EPIPE
    try:
        done = subprocess.run([sys.executable, "-m", "contree_tui", "engine", "status", "--state-dir",
                               str(tmp_path / "state")], stdout=write_end, stderr=subprocess.PIPE, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    finally:
        os.close(write_end)
    assert b"Traceback" not in done.stderr and b"BrokenPipeError" not in done.stderr, done.stderr.decode()
    assert done.returncode == 141
