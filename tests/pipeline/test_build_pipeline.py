"""The staged build's tree, its inputs checks and its resume command line, without an engine; and `.set(sync=)`,
the node parameter that sends a host folder into a step's sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from contree_tui.pipeline import Exec, PipelineError, Serial
from contree_tui.pipeline.build_offline import (
    OFFLINE_BUILD,
    OFFLINE_INSTALL,
    offline_build,
    offline_install,
    rewrite_command,
)
from contree_tui.pipeline.nodes import FolderSync
from contree_tui.pipeline.staged_build import (
    BuildInputError,
    BuildSpec,
    build_pipeline,
    check_resume,
    check_source,
    resume_command,
)

BASE = "0a1b2c3d-0000-4000-8000-000000000000"


def test_a_build_is_a_serial_of_four_stages_with_the_source_synced_into_setup(tmp_path: Path) -> None:
    (tmp_path / "My Proj").mkdir()
    spec = BuildSpec(tmp_path / "My Proj")
    root = build_pipeline(spec, BASE)
    assert isinstance(root, Serial) and list(root.children) == ["setup", "deps", "build", "test"]
    commands = {name: node.command for name, node in root.children.items() if isinstance(node, Exec)}
    assert commands["deps"] == "python3 -m pip install -e ." and commands["build"] == "python3 -m build"
    assert commands["test"] == "python3 -m pytest"
    eff = {name: node.effective() for name, node in root.children.items()}
    assert [eff[s].tag for s in root.children] == [None, "My-Proj/deps-installed", "My-Proj/build-complete", None]
    assert eff["test"].disposable and not eff["build"].disposable
    assert all(e.image == BASE and e.cwd == "/app" for e in eff.values())
    assert eff["setup"].sync == FolderSync((tmp_path / "My Proj").resolve(), "/app")
    assert [s for s in root.children if root.children[s].params.sync] == ["setup"]  # before deps, only there


def test_a_resumed_build_runs_the_later_stages_the_first_one_getting_the_source(tmp_path: Path) -> None:
    root = build_pipeline(BuildSpec(tmp_path, resume_from="build-complete"), BASE)
    assert list(root.children) == ["test"] and root["test"].params.sync is not None
    root = build_pipeline(BuildSpec(tmp_path, resume_from="deps-installed"), BASE)
    assert list(root.children) == ["build", "test"] and root["build"].params.sync is not None
    assert root["test"].params.sync is None


def test_build_inputs_are_checked_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(BuildInputError, match="no such directory"):
        check_source(tmp_path / "nope")
    with pytest.raises(BuildInputError, match=r"no pyproject\.toml or setup\.py"):
        check_source(tmp_path)
    (tmp_path / "setup.py").write_text("")
    assert check_source(tmp_path) == tmp_path.resolve()
    with pytest.raises(BuildInputError, match="the checkpoints are deps-installed, build-complete"):
        check_resume("tested")


def test_the_resume_command_is_the_command_given_with_resume_from_replaced() -> None:
    assert resume_command(["build", "my src", "--test", "pytest -x"], "build-complete") == \
        "contree-tui build 'my src' --test 'pytest -x' --resume-from build-complete"
    assert resume_command(["build", "--resume-from", "build-complete", "--resume-from=x"], "deps-installed") == \
        "contree-tui build --resume-from deps-installed"


def test_sync_takes_an_existing_folder_and_an_absolute_destination(tmp_path: Path) -> None:
    step = Exec("true").set(sync=str(tmp_path))
    assert step.params.sync == FolderSync(tmp_path.resolve(), "/app")
    parent = Serial({"a": Exec("true")}).set(sync=FolderSync(tmp_path, "/src", ("*.log",)))
    assert parent["a"].effective().sync == FolderSync(tmp_path.resolve(), "/src", ("*.log",))  # inherited
    with pytest.raises(PipelineError, match="is not a directory"):
        Exec("true").set(sync=tmp_path / "missing")
    with pytest.raises(PipelineError, match="must be an absolute path"):
        Exec("true").set(sync=FolderSync(tmp_path, "app"))
    with pytest.raises(PipelineError, match="sync takes a folder"):
        Exec("true").set(sync=3)  # type: ignore[arg-type]


def test_the_offline_spelling_of_an_install_and_a_build_command() -> None:
    assert offline_install("python3 -m pip install -e .") == OFFLINE_INSTALL
    assert offline_install("pip install -e '.[dev]'") == ("python3 -m pip install --no-index --no-build-isolation "
                                                          "-e '.[dev]'")
    assert offline_install("poetry install") == OFFLINE_INSTALL  # not pip's: the default's, as an example
    assert offline_build("python3 -m build") == OFFLINE_BUILD
    assert offline_build("python -m build --wheel") == "python3 -m build --no-isolation --wheel"
    assert offline_build("python3 -m build -n") is None and offline_build("make") is None
    argv = ["build", "p", "--install=pip install -e .", "--build", "python3 -m build", "--test", "true"]
    assert rewrite_command(argv, {"--install": "A", "--build": "B"}) == ("contree-tui build p --test true "
                                                                         "--install A --build B")
