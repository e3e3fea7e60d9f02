"""`contree-tui build --image` with a registry that has a port, as a stranger without internet uses one
(docker-registry on 127.0.0.1): `docker://127.0.0.1:PORT/team/app:v1` (the form the official clients send) is
imported and tagged with its name, and the bare `127.0.0.1:PORT/team/app:v1` then finds that tag without a
second import. Before, a port made the reference "unknown image" (the registry pattern took `:PORT` for a
tag). A busybox image: shell stages only, so no Python image is needed here."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from contree_tui.cli.build_command import REGISTRY_REF
from tests.client.conftest import stop_engine
from tests.images.busybox_layouts import whiteout_layout
from tests.images.registry import Registry, have_registry
from tests.pipeline.test_build import stage_lines
from tests.seeds.test_python_workflows import Cli

STAGES = ("--install", "echo deps", "--build", "cat /etc/changed", "--test", "test -f pyproject.toml")


@pytest.mark.parametrize("ref", ["docker://127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app",
                                 "localhost:5000/app@sha256:" + "a" * 64, "registry.example.com/a/b:1.2",
                                 "python:3.11-slim", "docker://alpine"])
def test_registry_references_with_and_without_a_port(ref: str) -> None:
    assert REGISTRY_REF.match(ref), ref


@pytest.mark.parametrize("ref", ["Upper/case", "a b", "127.0.0.1:port/x", "./dir"])
def test_what_is_no_registry_reference(ref: str) -> None:
    assert not REGISTRY_REF.match(ref), ref


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    if not have_registry():
        pytest.fail("docker-registry and skopeo are needed (apt-get install docker-registry skopeo)")
    reg = Registry.start(tmp_path / "registry")
    whiteout_layout(tmp_path / "layout", env=["PATH=/bin"])
    reg.push(tmp_path / "layout", "t1", "team/app", dest_tag="v1")
    yield reg
    reg.stop()


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    engine = Path(tempfile.mkdtemp(prefix="ctp-", dir=os.environ.get("TMPDIR", "/tmp"))) / "engine"  # short socket path
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "pyproject.toml").write_text("[project]\nname = 'p'\nversion = '0.1'\n")
    try:
        yield Cli(engine, folder, tmp_path / "cache")
    finally:
        stop_engine(engine)


def test_a_registry_image_with_a_port_is_imported_then_found_by_its_name(cli: Cli, registry: Registry) -> None:
    ref = registry.url("team/app", "v1")  # docker://127.0.0.1:PORT/team/app:v1
    name = ref.removeprefix("docker://")
    done = cli("build", str(cli.folder), "--image", ref, *STAGES)
    assert done.stderr.startswith(f"contree-tui: build: importing {ref} (tag {name})"), done.stderr
    assert stage_lines(done.stdout) == ["setup ran", "deps ran", "build ran", "test ran"], done.stdout
    for given in (name, ref):
        again = cli("build", str(cli.folder), "--image", given, *STAGES)
        assert "importing" not in again.stderr, again.stderr
        assert stage_lines(again.stdout) == ["setup cached", "deps cached", "build cached", "test cached"], \
            again.stdout
