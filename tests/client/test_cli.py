"""The headless CLI, driven as a user's shell would: subprocesses of `contree-tui` against the real served
engine, each in the test's own project folder and cache dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.client.conftest import CLI


class Cli:
    def __init__(self, engine_dir: Path, folder: Path) -> None:
        self.engine_dir = engine_dir
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def argv(self, *args: str) -> list[str]:
        return [*CLI, "--state-dir", str(self.engine_dir), "-C", str(self.folder), *args]

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=120, check=False)
        assert "Traceback" not in done.stderr, done.stderr
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    def json(self, command: str, *args: str) -> object:
        """`command --json args…` (before the arguments: `run` takes everything after its first word)."""
        return json.loads(self(command, "--json", *args).stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def cli(engine_dir: Path, tmp_path: Path) -> Cli:
    return Cli(engine_dir, tmp_path / "project")


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("contree-tui: "), stderr
    return lines[0]


def test_run_streams_output_and_exits_with_the_sandbox_exit_code(cli: Cli) -> None:
    done = cli("run", "--", "echo hi; exit 3", ok=False)
    assert done.returncode == 3 and done.stdout == "hi\n" and done.stderr == ""
    failed = cli("run", "--", "echo oops >&2; false", ok=False)
    assert failed.returncode == 1 and failed.stdout == "" and failed.stderr == "oops\n"


def test_run_output_arrives_while_the_command_still_runs(cli: Cli) -> None:
    proc = cli.popen("run", "--", "echo first; sleep 3; echo second")
    started = time.monotonic()
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first == "first\n" and proc.poll() is None, "the first line came only when the run had ended"
    assert time.monotonic() - started < 2.9
    rest, err = proc.communicate(timeout=60)
    assert rest == "second\n" and proc.returncode == 0, err


def test_run_moves_the_working_snapshot_shown_by_images_use_and_history(cli: Cli) -> None:
    cli("run", "--", "echo one > /one.txt")
    busybox = cli.json("use", "tag:busybox:latest")["image"]  # type: ignore[index]
    assert cli("run", "--", "echo two > /two.txt; cat /one.txt 2>/dev/null || echo no-one").stdout == "no-one\n"
    images = cli.json("images")
    assert isinstance(images, list)
    current = [i for i in images if i["current"]]
    assert len(current) == 1 and current[0]["parent"] == busybox  # the run started from busybox, after `use`
    assert current[0]["command"].startswith("echo two")
    assert current[0]["uuid"] == cli.json("use")["image"]  # type: ignore[index]
    history = cli.json("history")
    assert [e["action"] for e in history] == ["run", "jump", "run"]  # type: ignore[index]
    assert history[-1]["image"] == current[0]["uuid"] and history[-1]["exit_code"] == 0  # type: ignore[index]
    ops = cli.json("ops")
    assert isinstance(ops, list) and ops[0]["result_image"] == current[0]["uuid"]  # newest first
    assert ops[0]["exit_code"] == 0 and ops[0]["command"].startswith("echo two")
    text = cli("images").stdout
    assert any(line.startswith("*") and current[0]["uuid"][:8] in line for line in text.splitlines()), text


def test_rollback_then_forward(cli: Cli) -> None:
    cli("run", "--", "echo 1 > /n")
    first = cli.json("use")["image"]  # type: ignore[index]
    ran = cli.json("run", "--", "echo 2 > /n")  # --json: the outcome as one object instead of the stream
    second = cli.json("use")["image"]  # type: ignore[index]
    assert ran["status"] == "SUCCESS" and ran["exit_code"] == 0 and ran["moved"]  # type: ignore[index]
    assert ran["source"] == first and ran["result_image"] == ran["position"] == second  # type: ignore[index]
    back = cli.json("rollback")
    assert back["image"] == first and back["previous"] == second and back["redo"] == [second]  # type: ignore[index]
    assert cli("run", "--", "cat /n").stdout == "1\n"  # runs on the rolled-back snapshot, changes nothing
    ahead = cli.json("forward")
    assert ahead["image"] == second and ahead["redo"] == []  # type: ignore[index]
    assert cli("run", "--", "cat /n").stdout == "2\n"
    again = cli("forward", ok=False)
    assert again.returncode == 1 and "nothing to go forward to" in one_error_line(again.stderr)


def test_errors_are_one_line_and_a_nonzero_exit(cli: Cli) -> None:
    unknown = cli("run", "--image", "no-such-image", "--", "true", ok=False)
    line = one_error_line(unknown.stderr)
    assert unknown.returncode != 0 and "no image" in line and "no-such-image" in line
    missing = cli("use", "12345678-1234-1234-1234-123456789abc", ok=False)
    assert missing.returncode != 0 and "no image 12345678" in one_error_line(missing.stderr)
    no_op = cli("logs", "ffffffff-ffff-ffff-ffff-ffffffffffff", ok=False)
    assert no_op.returncode != 0 and "no operation" in one_error_line(no_op.stderr)
    rollback = cli("rollback", ok=False)  # a fresh folder has no working snapshot
    assert rollback.returncode != 0 and "no working snapshot" in one_error_line(rollback.stderr)
    profile = cli("--profile", "nosuch", "images", ok=False)
    assert profile.returncode == 2 and "no profile 'nosuch'" in one_error_line(profile.stderr)
    nothing = cli("run", ok=False)
    assert nothing.returncode != 0 and "give a command" in one_error_line(nothing.stderr)


def test_ctrl_c_interrupts_then_cancels(cli: Cli) -> None:
    proc = cli.popen("run", "--", "echo ready; sleep 30")
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "sent SIGINT" in err  # the shell's 128 + SIGINT

    stubborn = cli.popen("run", "--", "trap '' INT; echo ready; sleep 30; echo survived")
    assert stubborn.stdout is not None and stubborn.stdout.readline() == "ready\n"
    stubborn.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert stubborn.poll() is None  # SIGINT ignored inside: still running
    stubborn.send_signal(signal.SIGINT)
    out, err = stubborn.communicate(timeout=60)
    assert stubborn.returncode == 1 and "survived" not in out
    assert err.strip().splitlines()[-1].startswith("contree-tui: operation ") and "CANCELLED" in err


def test_logs_tag_and_download(cli: Cli, tmp_path: Path) -> None:
    cli("run", "--", "echo content > /data.txt; echo out; echo err >&2")
    logs = cli("logs")  # @: the folder's last run
    assert logs.stdout == "out\n" and logs.stderr == "err\n"
    op = cli.json("history")[-1]["operation"]  # type: ignore[index]
    assert cli("logs", op[:8]).stdout == "out\n"
    follow = cli("logs", "-f", op)
    assert follow.stdout == "out\n"
    events = [json.loads(line) for line in cli("logs", op, "--json").stdout.splitlines()]
    assert events[-1]["type"] == "completion"
    cli("run", "--", "touch /silent")  # a run with no output: its logs say so (they printed nothing at all)
    silent = cli("logs")
    assert silent.stdout == "" and silent.stderr.strip().endswith("printed nothing"), silent.stderr

    tag = f"cli-test:{os.getpid()}-{time.monotonic_ns()}"
    cli("tag", tag)
    image = cli.json("use")
    assert image["tags"] == [tag]  # type: ignore[index]
    assert cli("run", "--image", tag, "--disposable", "--", "cat /data.txt").stdout == "content\n"
    assert cli("download", "/data.txt", "-").stdout == "content\n"
    cli("download", "/data.txt", str(tmp_path / "out"), "--image", f"tag:{tag}")
    assert (tmp_path / "out").read_text() == "content\n"
    directory = cli("download", "/etc", str(tmp_path / "etc"), ok=False)
    assert "not a regular file" in one_error_line(directory.stderr) and not (tmp_path / "etc").exists()
    cli("tag", "--rm", tag)
    assert cli.json("use")["tags"] == []  # type: ignore[index]


def test_sync_once_and_runs_see_the_folder(cli: Cli) -> None:
    (cli.folder / "hello.txt").write_text("hello from the folder\n")
    (cli.folder / "ignored.log").write_text("no\n")
    (cli.folder / ".gitignore").write_text("*.log\n")
    report = cli.json("sync", "--dest", "/work")
    assert report["files"] == 2 and report["destination"] == "/work"  # type: ignore[index]
    assert cli("run", "--", "pwd; cat hello.txt; ls").stdout == "/work\nhello from the folder\nhello.txt\n"
    (cli.folder / "hello.txt").write_text("changed\n")
    assert cli("run", "--", "cat /work/hello.txt").stdout == "changed\n"  # every run syncs first
    cli("sync", "--off")
    (cli.folder / "hello.txt").write_text("not synced\n")
    assert cli("run", "--", "cat /work/hello.txt").stdout == "changed\n"


def test_engine_commands_still_work_with_the_global_state_dir(cli: Cli) -> None:
    done = subprocess.run([*CLI, "--state-dir", str(cli.engine_dir), "engine", "status"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0 and "engine running" in done.stdout
    done = subprocess.run([*CLI, "engine", "status", "--state-dir", str(cli.engine_dir)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0 and "engine running" in done.stdout


def test_run_keeps_a_long_log_whole(cli: Cli) -> None:
    """Our runs ask for the spec's largest output cap: 3 MB of log (the server default keeps 1 MiB) arrives."""
    done = cli("run", "--", "awk 'BEGIN { for (i = 1; i <= 60000; i++) printf \"line %05d of a long log\\n\", i }'")
    lines = done.stdout.splitlines()
    assert len(lines) == 60000
    assert lines[-1] == "line 60000 of a long log"


def test_a_timed_out_run_says_so_and_exits_124(cli: Cli) -> None:
    done = cli("run", "--timeout", "1", "--", "echo started; sleep 30", ok=False)
    assert done.returncode == 124 and done.stdout == "started\n", done.stderr
    assert "timed out and was killed" in done.stderr
    listed = cli("ops", "-n", "1").stdout.splitlines()[-1].split()
    assert listed[1:4] == ["timed", "out", "124"], listed  # the TUI's words (client/outcome_words.py)


def test_version_and_a_help_that_says_what_the_tool_is() -> None:
    from importlib.metadata import version

    shown = subprocess.run([*CLI, "--version"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert shown.strip() == f"contree-tui {version('contree-tui')}"
    text = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "filesystem is versioned" in text and "argument parsing" not in text, text
    assert "contree-tui import python:3.11-slim" in text  # examples, the first thing a newcomer looks for


def test_diff_prints_a_unified_diff_between_two_images(cli: Cli) -> None:
    cli("run", "--", "mkdir -p /w && printf 'one\\ntwo\\nthree\\n' > /w/t.txt && echo bye > /w/gone && "
                     "head -c 100 /dev/zero > /w/z")
    base = cli.json("use")["image"]  # type: ignore[index]
    cli("run", "--", "sleep 1; sed -i s/two/TWO/ /w/t.txt && rm /w/gone && echo hi > /w/new && "
                     "head -c 200 /dev/zero > /w/z")
    done = cli("diff", base[:8])  # against @, the working snapshot
    assert done.stdout.splitlines() == [
        "--- a/w/gone", "+++ /dev/null", "@@ -1 +0,0 @@", "-bye",
        "--- /dev/null", "+++ b/w/new", "@@ -0,0 +1 @@", "+hi",
        "--- a/w/t.txt", "+++ b/w/t.txt", "@@ -1,3 +1,3 @@", " one", "-two", "+TWO", " three",
        "Binary files a/w/z and b/w/z differ (100 B → 200 B)",
    ], done.stdout
    assert "1 added, 2 modified, 1 removed" in done.stderr
    unknown = cli("diff", "no-such-tag", ok=False)
    assert unknown.returncode == 1 and one_error_line(unknown.stderr)
