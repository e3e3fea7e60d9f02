"""`contree-tui pipeline FILE:FUNC --headless` as a user runs it (a subprocess of the real program, on a served
engine with busybox): progress lines per step, the summary, and the exit status 0 (done), 1 (a step failed),
2 (a pipeline that cannot be built or run as written)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contree_tui.cli.parser import build_parser
from contree_tui.cli.pipeline_command import _options, split_own_options
from contree_tui.pipeline.nodes import PipelineError
from tests.client.conftest import served_engine
from tests.pipeline import sample_pipelines as sp
from tests.pipeline.conftest import BUSYBOX

PIPE = str(Path(sp.__file__))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def busybox_engine() -> Iterator[Path]:
    yield from served_engine("ctp-")


def pipeline(engine: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree's code, whatever is installed
    return subprocess.run([sys.executable, "-m", "contree_tui.cli", "pipeline", *argv, "--state-dir", str(engine)],
                          capture_output=True, text=True, timeout=240, env=env)


def test_headless_prints_a_line_per_step_and_exits_0_when_done(busybox_engine: Path) -> None:
    done = pipeline(busybox_engine, f"{PIPE}:chain", "2", "--headless", "--image", BUSYBOX)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split("] ", 1)[1].split()[:2] for line in lines[:6] if "] " in line] == [
        ["run", "/step1"], ["done", "/step1"], ["run", "/step2"], ["done", "/step2"]]
    assert lines[2] == "  | 1" and lines[5:7] == ["  | 1", "  | 2"], lines  # each done step's output under it
    assert "pipeline done: P:0  Q:0  R:0  D:2  E:0  K:0" in lines
    assert done.stderr == ""

    again = pipeline(busybox_engine, f"{PIPE}:chain", "--headless", "2", f"--image={BUSYBOX}")  # options anywhere
    assert again.returncode == 0, again.stderr
    assert sum(" cached " in line for line in again.stdout.splitlines()) == 2, again.stdout  # nothing changed


def test_headless_exits_1_when_a_step_fails_and_shows_its_log(busybox_engine: Path) -> None:
    failed = pipeline(busybox_engine, f"{PIPE}:failing", "--headless", "--image", BUSYBOX)
    assert failed.returncode == 1, failed.stderr
    out = failed.stdout
    assert "FAIL  /boom  exit 3" in out
    assert "pipeline error: P:1  Q:0  R:0  D:1  E:1  K:0" in out  # /after never ran (stop_on_error)
    assert "  | boom" in out  # the failed step's log tail


def test_a_pipeline_that_cannot_run_exits_2_with_one_line(busybox_engine: Path) -> None:
    for argv, message in (([f"{PIPE}:chain"], "/step1: no image to run on"),
                          ([f"{PIPE}:nope", "--image", BUSYBOX], "has no function 'nope'"),
                          ([f"{PIPE}:chain", "--steps=x", "--image", BUSYBOX], "cannot read 'x' as int"),
                          (["nofile.py:chain"], "nofile.py: no such file"),
                          ([f"{PIPE}:chain", "--image"], "--image needs a value"),  # not --headless
                          ([], "give the pipeline: FILE:FUNC")):
        bad = pipeline(busybox_engine, *argv, "--headless")
        assert bad.returncode == 2, (argv, bad.stdout, bad.stderr)
        assert message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
        assert bad.stderr.startswith("contree-tui pipeline: ") and bad.stderr.count("\n") == 1, bad.stderr


def test_without_headless_a_bad_pipeline_is_refused_before_the_tui_opens(busybox_engine: Path) -> None:
    bad = pipeline(busybox_engine, f"{PIPE}:nope")
    assert bad.returncode == 2 and "has no function 'nope'" in bad.stderr, bad.stderr


def test_the_commands_options_are_read_among_the_functions_until_a_double_dash() -> None:
    own, rest = split_own_options(["30", "--headless", "--image=tag:x", "--n=2", "--", "--image", "y"])
    assert own == {"headless": True, "image": "tag:x"} and rest == ["30", "--n=2", "--image", "y"]
    own, rest = split_own_options(["--state-dir", "/tmp/e", "-C", "/src", "--force"])
    assert own == {"state_dir": "/tmp/e", "folder": "/src", "force": True} and rest == []
    for argv in (["--image"], ["--image", "--headless"]):
        with pytest.raises(PipelineError, match="--image needs a value"):
            split_own_options(argv)


def test_a_double_dash_right_after_file_func_passes_the_rest_to_the_function() -> None:
    """argparse dropped a `--` that directly follows a positional: `pipe.py:f -- --image=x` took --image=x as
    this command's option, against the documented escape."""
    for argv, image, rest in ((["pipe.py:f", "--", "--image=x"], None, ["--image=x"]),
                              (["pipe.py:f", "30", "--", "--image", "y"], None, ["30", "--image", "y"]),
                              (["--headless", "pipe.py:f", "--image=z", "30"], "z", ["30"])):
        args = build_parser().parse_args(["pipeline", *argv])
        assert _options(args) == (image, False, "--headless" in argv, rest), argv
        assert args.spec == "pipe.py:f"


def test_without_image_the_steps_run_on_the_folders_working_snapshot(busybox_engine: Path, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    none_yet = pipeline(busybox_engine, f"{PIPE}:chain", "1", "--headless", "-C", str(folder))
    assert none_yet.returncode == 2 and "the folder's working snapshot: it has none yet" in none_yet.stderr
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    use = subprocess.run([sys.executable, "-m", "contree_tui.cli", "use", BUSYBOX, "-C", str(folder), "--json",
                          "--state-dir", str(busybox_engine)], capture_output=True, text=True, timeout=120, env=env)
    assert use.returncode == 0, use.stderr
    # the TUI's `:pipeline` runs on it; the command line does the same (here: from another cwd, -C names it)
    done = pipeline(busybox_engine, f"{PIPE}:chain", "1", "--headless", "-C", str(folder))
    assert done.returncode == 0, done.stderr
    assert "pipeline done: P:0  Q:0  R:0  D:1  E:0  K:0" in done.stdout
