"""`contree-tui engine run` while another client has the embedded engine open (the TUI, the CLI, an agent):
it goes through that engine, so it no longer fails with "another engine is already using …", and what it
made is there for the other client; a state dir no engine can start from gets one clear line, exit 2."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from contree_tui.client.connection import Connection
from contree_tui.client.embedded import engine_pid
from contree_tui.client.image_files import ImageFiles
from tests.client.conftest import CLI


def engine_run(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "engine", "run", "--state-dir", str(state_dir), *args], capture_output=True,
                          text=True, timeout=120, check=False)


def only_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("contree-tui: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


async def test_engine_run_goes_through_the_running_engine_and_another_client_sees_its_result(
        engine_dir: Path, connection: Connection) -> None:
    pid = engine_pid(engine_dir)
    done = engine_run(engine_dir, "--", "echo made > /made.txt; echo out; echo err >&2; exit 3")
    assert done.returncode == 3, done.stderr  # the command's own exit code
    assert done.stdout == "out\n"
    assert "err\n" in done.stderr and "another engine" not in done.stderr
    found = re.search(r"^SUCCESS result image: ([0-9a-f-]{36})$", done.stderr, re.M)
    assert found, done.stderr
    assert engine_pid(engine_dir) == pid, "the engine that was running did the run: no second one"
    image = found.group(1)
    # the client that had the engine open all along sees the image and its file
    inspected = await connection.call(lambda: connection.client.inspect_image(image))
    assert str(inspected.uuid).lower() == image
    assert await ImageFiles(connection).read(image, "/made.txt") == b"made\n"


def test_a_run_that_changed_nothing_says_no_change_not_a_result_image(engine_dir: Path) -> None:
    """Its result is the image it ran on: `SUCCESS result image: <that uuid>` read as a new snapshot."""
    made = engine_run(engine_dir, "--", "echo base > /base.txt")
    base = re.search(r"^SUCCESS result image: ([0-9a-f-]{36})$", made.stderr, re.M)
    assert made.returncode == 0 and base, made.stderr
    same = engine_run(engine_dir, "--image", base.group(1), "--", "true")
    assert same.returncode == 0, same.stderr
    assert same.stderr.strip().splitlines()[-1] == f"SUCCESS · no change (still {base.group(1)[:8]})", same.stderr
    assert "result image" not in same.stderr
    gone = engine_run(engine_dir, "--disposable", "--", "echo x > /x")
    assert gone.returncode == 0 and gone.stderr.strip().splitlines()[-1] == "SUCCESS · no result image", \
        gone.stderr


def test_engine_run_refuses_a_missing_command_and_an_unknown_image(engine_dir: Path) -> None:
    missing = engine_run(engine_dir)
    assert missing.returncode == 1 and "give a command" in only_line(missing.stderr)
    unknown = engine_run(engine_dir, "--image", "no-such-tag", "--", "true")
    assert unknown.returncode == 1 and "no-such-tag" in only_line(unknown.stderr)


def test_a_damaged_state_dir_is_one_clear_line(tmp_path: Path) -> None:
    state = tmp_path / "engine"
    state.mkdir()
    (state / "engine.db").write_text("not a database")  # what a disk that filled up mid-write can leave
    done = engine_run(state, "--", "true")
    assert done.returncode == 2
    line = only_line(done.stderr)
    assert "the embedded engine could not start" in line and "engine.db cannot be read" in line, line
    assert f"move {state} aside" in line
    assert engine_pid(state) is None


def test_a_state_dir_that_is_a_file_is_one_clear_line(tmp_path: Path) -> None:
    state = tmp_path / "engine"
    state.write_text("a file where the state dir should be")
    done = engine_run(state, "--", "true")
    assert done.returncode == 2
    assert only_line(done.stderr) == f"contree-tui: cannot use {state} as the engine's state directory: it is " \
                                     "not a directory"
