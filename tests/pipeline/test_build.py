"""`contree-tui build` (seed 003's staged build) run as a user runs it, on a real engine and the bootstrapped
Debian image: a small Python package with a test suite through setup -> deps -> build -> test, an unchanged
re-run (all cache hits), a changed source file (re-run from deps), a broken test (the failed stage, the
rollback points, the resume command) and `--resume-from build-complete` (the test stage alone: one operation).

Sandboxes reach no package index, so the commands are the defaults made offline (Debian's setuptools, build and
pytest are in the image; the image has `python3`, not `python`).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from contree_tui.client.connection import Connection
from contree_tui.pipeline import Exec, Serial
from contree_tui.pipeline.build_offline import OFFLINE_BUILD, OFFLINE_INSTALL
from contree_tui.pipeline.executor import run_pipeline
from contree_tui.pipeline.nodes import FolderSync
from contree_tui.pipeline.step_cache import StepCache
from tests.images.busybox_layouts import whiteout_layout
from tests.pipeline.conftest import BUSYBOX
from tests.seeds.conftest import TAG
from tests.seeds.test_python_workflows import Cli

PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "calc"
version = "0.1"

[tool.setuptools.packages.find]
where = ["src"]
"""
CALC = "def add(a, b):\n    return a + b\n"
TEST = ("import calc\n\n\ndef test_add():\n    assert calc.add(2, 3) == 5\n\n\n"
        "def test_zero():\n    assert calc.add(0, 0) == 0\n")
OFFLINE = ("--install", "python3 -m pip install --no-index --no-build-isolation -e .",
           "--build", "python3 -m build --no-isolation --wheel",
           "--test", "python3 -m pytest -q")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "calc"
    (folder / "src" / "calc").mkdir(parents=True)
    (folder / "src" / "calc" / "__init__.py").write_text(CALC)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_calc.py").write_text(TEST)
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (folder / ".gitignore").write_text("dist/\nbuild/\n*.egg-info/\n")
    return folder


@pytest.fixture
def cli(python_engine: tuple[Path, str], tmp_path: Path, project: Path) -> Cli:
    return Cli(python_engine[0], project, tmp_path / "cache")


def stage_lines(out: str) -> list[str]:
    """`done  /deps  cached ...` -> 'deps cached'; `done  /deps  1.23s ...` -> 'deps ran'; FAIL -> 'x failed'."""
    found = []
    for line in out.splitlines():
        m = re.match(r"\[\s*[\d.]+s\] (done|FAIL)\s+/(\w+)\s+(\S+)", line)
        if m:
            found.append(f"{m.group(2)} " + ("failed" if m.group(1) == "FAIL" else
                                             "cached" if m.group(3) == "cached" else "ran"))
    return found


def operations(cli: Cli) -> int:
    return len(json.loads(cli("ops", "--all", "--json").stdout))


def test_a_package_goes_through_four_stages_then_cache_hits_then_from_deps_after_a_source_change(cli: Cli) -> None:
    build = ("build", str(cli.folder), "--image", f"tag:{TAG}", *OFFLINE)
    first = cli(*build)
    assert stage_lines(first.stdout) == ["setup ran", "deps ran", "build ran", "test ran"], first.stdout
    assert "build done: setup -> deps -> build -> test\ntest: 2 passed in " in first.stdout
    assert re.search(rf"  deps-installed  ({UUID})  \(tag calc/deps-installed\)", first.stdout), first.stdout
    deps = re.search(rf"deps-installed  ({UUID})", first.stdout).group(1)  # type: ignore[union-attr]
    # the build stage made the wheel in build-complete's snapshot
    listing = cli("run", "--image", "tag:calc/build-complete", "--disposable", "--no-sync", "--",
                  "ls /app/dist").stdout
    assert listing.strip() == "calc-0.1-py3-none-any.whl"
    # unchanged: every stage a cache hit, nothing run on the engine
    before = operations(cli)
    again = cli(*build)
    assert stage_lines(again.stdout) == ["setup cached", "deps cached", "build cached", "test cached"], again.stdout
    assert "cache hits (unchanged inputs, nothing run): setup, deps, build, test" in again.stdout
    assert operations(cli) == before
    # a changed source file: synced in setup, before deps, so deps and everything after run again
    (cli.folder / "src" / "calc" / "__init__.py").write_text(CALC + "\n\ndef sub(a, b):\n    return a - b\n")
    changed = cli(*build)
    assert stage_lines(changed.stdout) == ["setup ran", "deps ran", "build ran", "test ran"], changed.stdout
    assert operations(cli) == before + 4
    assert deps not in changed.stdout  # a new deps-installed checkpoint


def test_the_defaults_where_no_index_is_reached_say_so_and_print_the_offline_command_that_builds(cli: Cli) -> None:
    """The sandbox reaches no package index (no network here, or a proxy the image does not trust): the default
    deps stage fails fetching setuptools; the report says why and gives a command that builds offline, which
    does, on the bootstrapped image."""
    build = ("build", str(cli.folder), "--image", f"tag:{TAG}")
    failed = cli(*build, code=1)
    assert stage_lines(failed.stdout) == ["setup ran", "deps failed"], failed.stdout
    report = failed.stderr
    assert report.startswith("build FAILED at stage deps (exit 1): python3 -m pip install -e .\n"), report
    assert "the deps stage reached no package index (" in report, report
    offline = shlex.split(report.rstrip().splitlines()[-1])
    assert offline[-4:] == ["--install", OFFLINE_INSTALL, "--build", OFFLINE_BUILD], offline
    done = cli(*offline[1:])
    assert stage_lines(done.stdout) == ["setup cached", "deps ran", "build ran", "test ran"], done.stdout
    assert re.search(r"^test: 2 passed in [\d.]+s$", done.stdout, re.M), done.stdout  # without its ===== frame
    listing = cli("run", "--image", "tag:calc/build-complete", "--disposable", "--no-sync", "--",
                  "ls /app/dist").stdout
    assert listing.split() == ["calc-0.1-py3-none-any.whl", "calc-0.1.tar.gz"]  # build's default: both


def test_a_broken_test_reports_stage_checkpoints_and_resume_which_skips_deps(cli: Cli) -> None:
    build = ("build", str(cli.folder), "--image", f"tag:{TAG}", *OFFLINE)
    cli(*build)
    (cli.folder / "tests" / "test_calc.py").write_text(TEST.replace("== 5", "== 6"))
    failed = cli(*build, code=1)
    assert stage_lines(failed.stdout) == ["setup ran", "deps ran", "build ran", "test failed"], failed.stdout
    report = failed.stderr
    assert report.startswith("build FAILED at stage test (exit 1): python3 -m pytest -q\n"), report
    assert "1 failed, 1 passed" in report  # the log's tail
    points = re.findall(rf"^  (base|source-synced|deps-installed|build-complete) +({UUID})", report, re.M)
    assert [name for name, _ in points] == ["base", "source-synced", "deps-installed", "build-complete"], report
    checkpoints = dict(points)
    resume = report.split("to resume after a fix", 1)[1].splitlines()[1].strip()
    assert shlex.split(resume) == ["contree-tui", "--state-dir", str(cli.engine), "-C", str(cli.folder), *build,
                                   "--resume-from", "build-complete"]
    assert "(or from deps-installed: --resume-from deps-installed)" in report
    # fixed, then resumed from build-complete: the test stage alone runs, on that checkpoint (one operation)
    (cli.folder / "tests" / "test_calc.py").write_text(TEST)
    before = operations(cli)
    resumed = cli(*shlex.split(resume)[1:])
    assert stage_lines(resumed.stdout) == ["test ran"], resumed.stdout
    assert f"on checkpoint build-complete {checkpoints['build-complete']}" in resumed.stdout
    assert operations(cli) == before + 1
    assert "build done: test\ntest: 2 passed in " in resumed.stdout
    assert re.search(rf"  build-complete  {checkpoints['build-complete']}  \(tag calc/build-complete\)",
                     resumed.stdout), resumed.stdout


def test_a_failed_build_stage_offers_deps_installed_and_a_failed_deps_stage_a_plain_rerun(cli: Cli) -> None:
    build = ("build", str(cli.folder), "--image", f"tag:{TAG}", *OFFLINE[:2], "--build", "exit 3")
    failed = cli(*build, code=1)
    assert stage_lines(failed.stdout) == ["setup ran", "deps ran", "build failed"], failed.stdout
    assert failed.stderr.startswith("build FAILED at stage build (exit 3): exit 3\n"), failed.stderr
    assert failed.stderr.rstrip().endswith("--build 'exit 3' --resume-from deps-installed"), failed.stderr
    no_deps = cli("build", str(cli.folder), "--image", f"tag:{TAG}", "--install", "exit 4", code=1)
    assert stage_lines(no_deps.stdout) == ["setup cached", "deps failed"], no_deps.stdout
    assert "no checkpoint before this stage: fix it and run the same command again" in no_deps.stderr
    assert re.findall(r"^  (base|source-synced) ", no_deps.stderr, re.M) == ["base", "source-synced"]


def test_an_image_given_as_a_local_layout_is_imported_then_built_on(cli: Cli, tmp_path: Path) -> None:
    """Seed 003's "import if needed", offline: an OCI layout (busybox: shell stages only)."""
    whiteout_layout(tmp_path / "layout", env=["PATH=/bin"])
    done = cli("build", str(cli.folder), "--image", f"oci:{tmp_path / 'layout'}:t1", "--install", "echo deps",
               "--build", "cat /etc/changed", "--test", "test -f pyproject.toml")
    assert done.stderr.startswith(f"contree-tui: build: importing oci:{tmp_path / 'layout'}:t1\n"), done.stderr
    assert stage_lines(done.stdout) == ["setup ran", "deps ran", "build ran", "test ran"], done.stdout
    missing = cli("build", str(cli.folder), "--image", f"oci:{tmp_path / 'nothing'}:t1", code=2)
    assert f"unknown image 'oci:{tmp_path / 'nothing'}:t1': its import FAILED" in missing.stderr, missing.stderr


def test_a_build_that_cannot_start_says_why_and_exits_2(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    never_built = tmp_path / "never-built"  # checkpoint tags are per project; the engine is the session's
    never_built.mkdir()
    (never_built / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    (tmp_path / "file").write_text("x")
    for args, message in (
            ((str(tmp_path / "nowhere"),), f"build: {tmp_path / 'nowhere'}: no such directory"),
            ((str(tmp_path / "file"),), "not a directory"),
            ((str(empty),), "no pyproject.toml or setup.py: not a Python project"),
            ((str(cli.folder),), "no image: give --image REF"),
            ((str(cli.folder), "--image", "tag:no-such-image"), "unknown image 'tag:no-such-image'"),
            ((str(never_built), "--image", f"tag:{TAG}", "--resume-from", "build-complete"),
             "no checkpoint build-complete for never-built yet (tag never-built/build-complete)")):
        done = cli("build", *args, code=2)
        assert done.stderr.startswith("contree-tui: ") and message in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and done.stdout == ""


async def test_a_synced_folder_change_reruns_from_the_first_step_that_gets_it(connection: Connection,
                                                                              tmp_path: Path) -> None:
    """`.set(sync=)` on its own (what the build's setup uses): the folder's digest is an input of the steps that
    get it, so a change re-runs those and the ones after, and the steps before stay cache hits."""
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "data.txt").write_text("one\n")

    def tree() -> Serial:
        root = Serial().set(image=BUSYBOX)
        root["before"] = Exec("echo before > /before")
        root["reads"] = Exec("cat /src/data.txt > /copy").set(sync=FolderSync(folder, "/src"))
        root["after"] = Exec("cat /copy")
        return root

    cache = StepCache(None)
    first = await run_pipeline(tree(), connection, cache=cache)
    assert bytes(first.runs["/after"].output) == b"one\n"
    (folder / "data.txt").write_text("two\n")
    second = await run_pipeline(tree(), connection, cache=cache)
    assert [second.runs[p].cached for p in ("/before", "/reads", "/after")] == [True, False, False]
    assert bytes(second.runs["/after"].output) == b"two\n"
    third = await run_pipeline(tree(), connection, cache=cache)
    assert all(third.runs[p].cached for p in ("/before", "/reads", "/after"))
