"""Pipelines where the engine has no network to give (no pasta; a normal user's engine with /dev/net/tun 0600, as
on this project's VM, #14): every step is refused as a networked run would be, so `pipeline` and `build` take
`--no-network` (the default of the steps that set none) and a node `.set(network=False)`, and the refusal names
them. `--no-network` wins over a step's own network=True (it runs offline and says so). The engine has no pasta
(CONTREE_TUI_PASTA empty, tests/client/test_no_network.py's fixture)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from contree_tui.pipeline.nodes import Exec, Serial, default_network
from contree_tui.pipeline.step_cache import StepInputs
from tests.client.test_no_network import offline_engine  # noqa: F401  (the fixture)
from tests.pipeline import network_pipelines
from tests.pipeline.conftest import BUSYBOX

PIPE = str(Path(network_pipelines.__file__))
ROOT = Path(__file__).resolve().parents[2]


def cli(engine: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree's code, whatever is installed
    return subprocess.run([sys.executable, "-m", "contree_tui.cli", *argv, "--state-dir", str(engine)],
                          capture_output=True, text=True, timeout=240, env=env, check=False)


def step_lines(out: str, path: str) -> list[str]:
    """The output lines under the `done  PATH` progress line."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if f"done  {path} " in line)
    return [line[4:] for line in lines[start + 1:] if line.startswith("  | ")][:2]


def test_a_pipeline_runs_offline_with_no_network_or_a_node_that_sets_it(offline_engine: Path) -> None:  # noqa: F811
    refused = cli(offline_engine, "pipeline", f"{PIPE}:links", "--headless", "--image", BUSYBOX)
    assert refused.returncode == 1, refused.stderr
    assert "FAIL  /first  HTTP 400: networking needs pasta" in refused.stdout, refused.stdout
    assert "for contree-tui run, engine run, pipeline and build" in refused.stdout  # names the pipeline's way
    assert "`--no-network`" in refused.stdout and ".set(network=False)" in refused.stdout
    assert "P:1  Q:0  R:0  D:0  E:1" in refused.stdout  # failed at its first step, the second never ran

    offline = cli(offline_engine, "pipeline", f"{PIPE}:links", "--headless", "--no-network", "--image", BUSYBOX)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert int(step_lines(offline.stdout, "/first")[0]) <= 2, offline.stdout  # loopback only (2 lines)
    second = step_lines(offline.stdout, "/second")
    assert second[0] == "second" and int(second[1]) <= 2, offline.stdout

    # the root's .set(network=False), inherited: the same inputs as --no-network's, so cache hits
    marked = cli(offline_engine, "pipeline", f"{PIPE}:marked", "--headless", "--image", BUSYBOX)
    assert marked.returncode == 0, marked.stdout + marked.stderr
    assert marked.stdout.count(" cached ") == 2, marked.stdout

    assert marked.stdout.startswith("pipeline offline (network=False): its steps get loopback only\n"), marked.stdout


def test_no_network_wins_over_a_steps_own_network_true_and_says_so(offline_engine: Path) -> None:  # noqa: F811
    # it used to let the step through: refused by the engine, with advice to pass the --no-network already given
    mixed = cli(offline_engine, "pipeline", f"{PIPE}:one_online", "--no-network", "--headless", "--image", BUSYBOX)
    assert mixed.returncode == 0, mixed.stdout + mixed.stderr
    assert "networking needs" not in mixed.stdout and "--no-network` for" not in mixed.stdout, mixed.stdout
    lines = mixed.stdout.splitlines()
    assert lines[0] == "pipeline offline (--no-network): its steps get loopback only", mixed.stdout
    wants = ("  · it sets network=True, but the pipeline was started with --no-network, which wins: it runs offline "
             "(loopback only)")
    assert next(line for line in lines if " run   /second  on " in line).endswith(wants), mixed.stdout
    assert not next(line for line in lines if " run   /first  on " in line).endswith(")"), mixed.stdout  # as the run
    assert int(step_lines(mixed.stdout, "/second")[1]) <= 2, mixed.stdout  # loopback only

    # a step that needs the network fails offline: its failure names the likely cause
    failing = cli(offline_engine, "pipeline", f"{PIPE}:needs_network", "--no-network", "--headless", "--image",
                  BUSYBOX)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert ("FAIL  /fetch  exit 1 (it sets network=True, but the pipeline was started with --no-network, which "
            "wins: it runs offline (loopback only))") in failing.stdout, failing.stdout
    assert "failed: /fetch (exit 1 (it sets network=True, but" in failing.stdout, failing.stdout


def test_a_build_runs_offline_with_no_network(offline_engine: Path, tmp_path: Path) -> None:  # noqa: F811
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = \"proj\"\nversion = \"0.1\"\n")
    build = ("build", str(project), "--image", BUSYBOX, "--install", "echo deps", "--build", "echo built",
             "--test", 'test -f pyproject.toml && test "$(ip link | wc -l)" -le 2')  # loopback only
    refused = cli(offline_engine, *build)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stderr.startswith("build FAILED at stage setup"), refused.stderr
    assert "`--no-network` for contree-tui run, engine run, pipeline and build" in refused.stderr
    offline = cli(offline_engine, *build, "--no-network")
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "build done: setup -> deps -> build -> test" in offline.stdout, offline.stdout


def test_network_false_is_inherited_and_only_an_offline_step_changes_its_cache_key() -> None:
    root = Serial({"a": Exec("true"), "b": Serial({"c": Exec("true")})})
    assert root["/b/c"].effective().network is True  # networked by default, as the API's runs are
    root["b"].set(network=False)
    assert (root["/a"].effective().network, root["/b/c"].effective().network) == (True, False)
    root["/b/c"].set(network=True)
    assert root["/b/c"].effective().network is True  # the nearest setter wins
    assert not root["/b/c"].effective().network_overridden
    default_network(root, False)
    assert (root["/a"].effective().network, root["/b"].effective().network) == (False, False)
    assert root["/b/c"].effective().network is False and root["/b/c"].effective().network_overridden  # the flag wins
    assert not root["/a"].effective().network_overridden  # it asked for nothing
    marked = Serial().set(network=True)
    default_network(marked, False)
    assert marked.params.network is True and marked.effective().network is False  # kept, but the flag wins
    inputs = {"source": "s", "command": "c", "env": {}, "cwd": None, "disposable": False, "files": {}}
    online = StepInputs(**inputs)  # type: ignore[arg-type]
    # a networked step's key is the one it had before network= existed (no cached step is lost)
    assert online.key == hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    assert StepInputs(**inputs, network=True).key == online.key  # type: ignore[arg-type]
    assert StepInputs(**inputs, network=False).key != online.key  # type: ignore[arg-type]
