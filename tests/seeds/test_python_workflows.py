"""Seeds 001 ("Install Dependencies and Save") and 003 (the multi-stage build with rollback checkpoints), run
for real with the headless CLI, as a user's shell would, on the Debian image `engine bootstrap debian` made.

Sandboxes may reach no package index, so every install is `--no-index`: the dependency is a local project
built in the sandbox (Debian's setuptools, wheel, build, pytest are in the image).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from contree_tui.client.debian_bootstrap import default_suite
from tests.client.conftest import CLI, CONTREE_ENV
from tests.seeds.conftest import TAG

GREET_PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "greet"
version = "1.0"

[tool.setuptools]
py-modules = ["greet"]
"""

CALC_PYPROJECT = """\
[build-system]
requires = ["setuptools", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "calc"
version = "0.1"
dependencies = ["greet"]

[project.optional-dependencies]
dev = ["pytest"]

[tool.setuptools.packages.find]
where = ["src"]
"""

CALC_TEST = """\
import calc


def test_add():
    assert calc.add(2, 3) == 5


def test_greeting():
    assert calc.greeting() == "hello from greet 1.0"
"""


class Cli:
    """`contree-tui --state-dir ENGINE -C FOLDER …` as a subprocess, in the test's own caches."""

    def __init__(self, engine: Path, folder: Path, cache: Path) -> None:
        self.engine, self.folder = engine, folder
        folder.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in CONTREE_ENV}
        self.env = {**env, "XDG_CACHE_HOME": str(cache), "CONTREE_HOME": str(cache / "contree-home")}

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*CLI, "--state-dir", str(self.engine), "-C", str(self.folder), *args],
                              capture_output=True, text=True, timeout=300, env=self.env, check=False)
        assert "contree_tui/" not in done.stderr, done.stderr  # no traceback of ours (the sandbox's may be expected)
        assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def position(self) -> str:
        data: Any = json.loads(self("use", "--json").stdout)
        return str(data["image"])


@pytest.fixture
def cli(python_engine: tuple[Path, str], tmp_path: Path) -> Cli:
    return Cli(python_engine[0], tmp_path / "project", tmp_path / "cache")


def write_greet(folder: Path) -> None:
    (folder / "vendor" / "greet").mkdir(parents=True)
    (folder / "vendor" / "greet" / "pyproject.toml").write_text(GREET_PYPROJECT)
    (folder / "vendor" / "greet" / "greet.py").write_text('def hello():\n    return "hello from greet 1.0"\n')


def test_the_bootstrapped_image_has_python_and_the_build_tools(cli: Cli) -> None:
    out = cli("run", "--image", f"tag:{TAG}", "--disposable", "--no-sync", "--",
              ". /etc/os-release; echo $VERSION_CODENAME; python3 -c 'import build, pytest, setuptools, wheel, venv; "
              "print(pytest.__version__ > \"7\")'; pip --version").stdout.splitlines()
    assert out[0] == default_suite()
    assert out[1] == "True" and out[2].startswith("pip ")
    assert cli("images").stdout.count(TAG) == 1


def test_seed_001_install_dependencies_and_save(cli: Cli) -> None:
    write_greet(cli.folder)
    (cli.folder / "main.py").write_text("import greet\nprint(greet.hello())\n")
    cli("use", f"tag:{TAG}")
    cli("sync", "--dest", "/app")
    base = cli.position()
    # the dependency, built in the sandbox into a local wheelhouse (no package index)
    cli("run", "--", "python3 -m build --no-isolation --wheel --outdir /wheels vendor/greet >/dev/null && ls /wheels")
    # "pip install … with disposable=false": the result is a new snapshot, saved under a tag
    done = cli("run", "--", "pip install --no-index --find-links /wheels greet")
    assert "Successfully installed greet-1.0" in done.stdout
    with_deps = cli.position()
    assert with_deps != base
    cli("tag", "seeds-with-deps")
    # a later run from the saved image imports the dependency; the base image never had it
    assert cli("run", "--image", "tag:seeds-with-deps", "--disposable", "--", "python3 main.py").stdout == \
        "hello from greet 1.0\n"
    missing = cli("run", "--image", base, "--disposable", "--", "python3 main.py", code=1)
    assert "ModuleNotFoundError: No module named 'greet'" in missing.stderr


def test_seed_003_staged_build_with_rollback_checkpoints(cli: Cli) -> None:
    write_greet(cli.folder)
    (cli.folder / "src" / "calc").mkdir(parents=True)
    (cli.folder / "src" / "calc" / "__init__.py").write_text(
        "import greet\n\n\ndef add(a, b):\n    return a + b\n\n\ndef greeting():\n    return greet.hello()\n")
    (cli.folder / "tests").mkdir()
    (cli.folder / "tests" / "test_calc.py").write_text(CALC_TEST)
    (cli.folder / "pyproject.toml").write_text(CALC_PYPROJECT)
    (cli.folder / ".gitignore").write_text("dist/\nbuild/\n*.egg-info/\n")
    cli("use", f"tag:{TAG}")  # stage 1: the base, and the folder synced to /app
    cli("sync", "--dest", "/app")
    # stage 2 (checkpoint deps-installed): pip install -e '.[dev]', the local dependency beside it
    cli("run", "--", "pip install --no-index --no-build-isolation -e '.[dev]' ./vendor/greet")
    deps = cli.position()
    # stage 3 (checkpoint build-complete): python -m build
    done = cli("run", "--", "python3 -m build --no-isolation --wheel && ls dist")
    assert done.stdout.strip().endswith("calc-0.1-py3-none-any.whl")
    build = cli.position()
    assert build != deps
    # stage 4: the tests, on a disposable run
    assert "2 passed" in cli("run", "--disposable", "--", "pytest -v").stdout
    assert cli.position() == build
    # a broken test fails the stage...
    (cli.folder / "tests" / "test_calc.py").write_text(CALC_TEST.replace("== 5", "== 6"))
    failed = cli("run", "--disposable", "--", "pytest -q", code=1)
    assert "1 failed, 1 passed" in failed.stdout
    # ...and the checkpoints stay: build-complete still holds the wheel, deps-installed precedes it
    assert cli.position() == build
    listing = cli("run", "--disposable", "--", "python3 -m zipfile -l dist/calc-0.1-py3-none-any.whl").stdout
    assert "calc/__init__.py" in listing
    cli("rollback")
    assert cli.position() == deps
    cli("run", "--disposable", "--", "test ! -e dist")
    (cli.folder / "tests" / "test_calc.py").write_text(CALC_TEST)  # fixed: retried from deps-installed
    assert "2 passed" in cli("run", "--disposable", "--", "pytest -q").stdout
