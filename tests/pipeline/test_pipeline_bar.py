"""`contree-tui pipeline FILE:FUNC --headless` on a terminal (a pseudo-terminal as its stdout, a subprocess of the
real program on a served engine with busybox): a bar line under the progress lines, redrawn in place, gone at
the end; the lines themselves as in a pipe."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contree_tui.client.progress import ERASE_LINE
from tests.client.conftest import served_engine
from tests.pipeline import sample_pipelines as sp
from tests.pipeline.conftest import BUSYBOX

PIPE = str(Path(sp.__file__))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def busybox_engine() -> Iterator[Path]:
    yield from served_engine("ctb-")


def on_a_terminal(engine: Path, *argv: str, timeout: float = 240, command: str = "pipeline") -> tuple[int, str]:
    """The command with a pty as stdout (stderr a pipe): its exit status and every byte it wrote there."""
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "contree_tui.cli", command, *argv, "--state-dir", str(engine)],
                            stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child has gone and closed its end
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    proc.wait(timeout=10)
    assert proc.stderr is not None
    assert proc.stderr.read() == b""
    return proc.returncode, out.decode().replace("\r\n", "\n")


def screen(raw: str) -> list[str]:
    """What a terminal shows at the end: each line as `\\r` + erase-line leave it."""
    lines = []
    for line in raw.split("\n"):
        lines.append(line.rsplit(ERASE_LINE, 1)[-1])
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def test_on_a_terminal_a_bar_counts_the_steps_and_is_erased_at_the_end(busybox_engine: Path) -> None:
    status, raw = on_a_terminal(busybox_engine, f"{PIPE}:chain", "5", "--headless", "--image", BUSYBOX)
    assert status == 0, raw
    assert "3/5 steps" in raw and "5/5 steps  0 running  0 errors" in raw, raw
    assert "2/5 steps  1 running" in raw, "the step running is counted"
    assert "[============" in raw, "a bar, as import's"
    shown = screen(raw)
    assert not any("steps" in line for line in shown), shown  # erased: nothing of the bar stays on screen
    assert [line.split("] ", 1)[1].split()[:2] for line in shown[:2]] == [["run", "/step1"], ["done", "/step1"]]
    assert "pipeline done: P:0  Q:0  R:0  D:5  E:0  K:0" in shown


def test_a_failed_step_is_counted_as_an_error_on_the_bar(busybox_engine: Path) -> None:
    status, raw = on_a_terminal(busybox_engine, f"{PIPE}:failing", "--headless", "--image", BUSYBOX)
    assert status == 1, raw
    assert "1 error " in raw, raw
    shown = screen(raw)
    assert not any("steps" in line for line in shown) and "FAIL  /boom  exit 3" in "\n".join(shown), shown


def test_in_a_pipe_no_bar_nor_carriage_return(busybox_engine: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "contree_tui.cli", "pipeline", f"{PIPE}:chain", "3", "--headless",
                           "--image", BUSYBOX, "--state-dir", str(busybox_engine)],
                          capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stdout and "\x1b" not in done.stdout and "steps" not in done.stdout, done.stdout
    # run+done per step, each done step's output under it (1, 2, 3 lines: /chain.txt grows), summary, checkpoints
    assert len(done.stdout.splitlines()) == 6 + 6 + 1 + 1 + 3, done.stdout
    assert "  | 1\n  | 2\n  | 3\n" in done.stdout, done.stdout


def test_build_on_a_terminal_has_the_same_bar_erased_before_its_report(busybox_engine: Path, tmp_path: Path) -> None:
    """`contree-tui build` printed its stage lines with no bar (its printer was given no run to count)."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'proj'\nversion = '0.1'\n")
    stages = ("--image", BUSYBOX, "--install", "echo deps", "--build", "sleep 1", "--test", "true")
    status, raw = on_a_terminal(busybox_engine, str(project), *stages, command="build")
    assert status == 0, raw
    assert "0/4 steps" in raw and "4/4 steps  0 running  0 errors" in raw and "[====" in raw, raw
    shown = screen(raw)
    assert not any("steps" in line for line in shown), shown
    assert "build done: setup -> deps -> build -> test" in shown, shown
    piped = subprocess.run([sys.executable, "-m", "contree_tui.cli", "build", str(project), *stages, "--force",
                            "--state-dir", str(busybox_engine)], capture_output=True, text=True, timeout=240,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert piped.returncode == 0, piped.stderr
    assert "\r" not in piped.stdout and "\x1b" not in piped.stdout and "steps" not in piped.stdout, piped.stdout
