"""`engine bootstrap debian` apart from the image it makes: which apt sources it builds from, that mmdebstrap
runs with no host privilege, and the errors a user meets (each with the cause in its own words)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from contree_tui.client.apt_sources import AptSource, debian_sources, read_sources, render
from contree_tui.client.debian_bootstrap import BootstrapError, BootstrapSpec, Tarball, _prune, ensure_tarball
from contree_tui.client.userns_spawn import IdRange, spawn_as_namespace_root
from tests.client.conftest import CLI, CONTREE_ENV, stop_engine
from tests.seeds.conftest import cli_env

SIGNED = "/usr/share/keyrings/debian-archive-keyring.gpg"


def test_the_hosts_debian_sources_are_kept_and_renamed_for_another_suite(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir(parents=True)
    (tmp_path / "sources.list").write_text(
        "# the mirror this machine uses\n"
        f"deb [arch=amd64 signed-by={SIGNED}] http://mirror.example/debian bookworm main contrib\n"
        "deb-src http://mirror.example/debian bookworm main\n"
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://snapshot.example/debian-security\nSuites: bookworm-security\n"
        f"Components: main\nSigned-By: {SIGNED}\n\n"
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm-backports\nComponents: main\nEnabled: no\n")
    (tmp_path / "sources.list.d" / "nodesource.sources").write_text(
        "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n")
    (tmp_path / "sources.list.d" / "local.list").write_text(
        "deb [trusted=yes] file:/srv/mirror bookworm-updates main\n")
    (tmp_path / "sources.list.d" / "old.list.disabled").write_text("deb http://old.example/debian bookworm main\n")
    kept = debian_sources("trixie", "bookworm", read_sources(tmp_path))
    assert kept == [
        AptSource(("http://mirror.example/debian",), ("trixie",), ("main", "contrib"), SIGNED, ("amd64",)),
        AptSource(("http://snapshot.example/debian-security",), ("trixie-security",), ("main",), SIGNED),
        AptSource(("file:/srv/mirror",), ("trixie-updates",), ("main",), trusted=True),
    ]
    assert render(kept).startswith("Types: deb\nURIs: http://mirror.example/debian\nSuites: trixie\n")
    assert render(kept).endswith("Suites: trixie-updates\nComponents: main\nTrusted: yes\n")
    assert debian_sources("bookworm", None, read_sources(tmp_path)) == []  # not a Debian host: none of them


async def test_mmdebstrap_runs_as_the_root_of_a_user_namespace_owning_nothing_on_the_host() -> None:
    ids = IdRange.from_host()
    with tempfile.TemporaryDirectory() as work:
        os.chown(work, ids.uid_base, ids.gid_base)
        proc = await spawn_as_namespace_root(["sh", "-c", "id -u; cat /proc/self/uid_map; touch made"], ids,
                                             stdout=asyncio.subprocess.PIPE, cwd=work)
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        uid, mapping = out.decode().splitlines()
        assert uid == "0" and mapping.split() == ["0", str(ids.uid_base), "65536"]
        made = os.stat(Path(work) / "made")
        assert (made.st_uid, made.st_gid) == (ids.uid_base, ids.gid_base)  # root there is nobody here


def test_without_mmdebstrap_the_error_is_the_apt_get_line(tmp_path: Path) -> None:
    done = subprocess.run([*CLI, "engine", "bootstrap", "debian", "--state-dir", str(tmp_path / "engine")],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert done.returncode == 2
    assert done.stderr == "contree-tui: mmdebstrap is not installed: apt-get install mmdebstrap\n"
    assert not (tmp_path / "engine").exists()  # nothing started for nothing


def test_unreachable_apt_sources_are_named_and_leave_nothing(tmp_path: Path) -> None:
    apt = tmp_path / "apt"
    apt.mkdir()
    (apt / "sources.list").write_text("deb http://127.0.0.1:9/debian bookworm main\n")  # nothing listens on 9
    staging_before = set(Path(tempfile.gettempdir()).glob("contree-tui-bootstrap-*"))
    progress: list[str] = []
    with pytest.raises(BootstrapError) as caught:
        asyncio.run(ensure_tarball(BootstrapSpec("bookworm", ()), progress.append, cache=tmp_path / "cache",
                                   apt_dir=apt))
    message = str(caught.value)
    assert message.startswith("bootstrap: the apt sources (http://127.0.0.1:9/debian) could not be reached: ")
    assert "127.0.0.1" in message.split("reached: ", 1)[1] and caught.value.exit_code == 1
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".lock"]  # no tar, no .part
    assert set(Path(tempfile.gettempdir()).glob("contree-tui-bootstrap-*")) == staging_before


def test_an_unknown_suite_fails_with_apts_reason(tmp_path: Path) -> None:
    done = subprocess.run([*CLI, "engine", "bootstrap", "debian", "--suite", "nosuchsuite", "--include", "",
                           "--state-dir", str(tmp_path / "engine")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("contree-tui: bootstrap: mmdebstrap failed: The repository ")
    assert "nosuchsuite Release' does not have a Release file" in last
    assert "Traceback" not in done.stderr and not (tmp_path / "engine").exists()


def test_bad_names_are_refused_before_anything_runs() -> None:
    with pytest.raises(BootstrapError, match="not a Debian package name"):
        BootstrapSpec("bookworm", ("python3", "rm -rf"))
    with pytest.raises(BootstrapError, match="not a Debian suite name"):
        BootstrapSpec("../etc")


def test_a_second_bootstrap_is_the_same_image_at_once(python_engine: tuple[Path, str], bootstrap_cache: Path,
                                                      tmp_path: Path) -> None:
    """A rootfs tarball is content-addressed (its sha256): the cached tar again is the image already made,
    found by hashing the file, with no extraction."""
    root, uuid = python_engine
    done = subprocess.run([*CLI, "engine", "bootstrap", "debian", "--state-dir", str(root), "--tag", "again"],
                          capture_output=True, text=True, timeout=120, env=cli_env(bootstrap_cache))
    assert done.returncode == 0, done.stderr
    assert f"imported as {uuid} (tag again)" in done.stdout, done.stdout + done.stderr
    assert "  extract" not in done.stderr, done.stderr


def test_ctrl_c_during_the_import_cancels_it_and_leaves_no_image(debian_tarball: Tarball, bootstrap_cache: Path,
                                                                  tmp_path: Path) -> None:
    # An engine of its own: the session's engine imported this tar already, and the same tar again is that
    # image at once (content-addressed), with no extraction to interrupt.
    root = Path(tempfile.mkdtemp(prefix="cts-")) / "engine"  # short: Unix socket paths stop at 107 bytes
    try:
        proc = subprocess.Popen([*CLI, "engine", "bootstrap", "debian", "--state-dir", str(root), "--tag",
                                 "interrupted"], stderr=subprocess.PIPE, text=True, start_new_session=True,
                                env=cli_env(bootstrap_cache))
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # the tar is cached: straight to the import
            seen.append(line)
            if line.startswith("interrupted  extract"):  # the import's progress, a line a step (progress.py)
                os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C on a terminal does: the whole process group
                break
        assert proc.wait(timeout=60) == 130, "".join(seen)
        client = cli_in(root, tmp_path)
        cancelled = [op for op in json.loads(client("ops", "--json", "-a")) if op["status"] == "CANCELLED"]
        assert len(cancelled) == 1 and cancelled[0]["kind"] == "image_import"
        assert "interrupted" not in client("images")
        assert not list((root / "imports").iterdir())  # nothing half-made kept
    finally:
        stop_engine(root)
        shutil.rmtree(root.parent, ignore_errors=True)


def cli_in(root: Path, tmp_path: Path) -> Callable[..., str]:
    """`contree-tui` on that engine, its client caches in the test's own dir."""
    env = {**{k: v for k, v in os.environ.items() if k not in CONTREE_ENV}, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def call(*args: str) -> str:
        done = subprocess.run([*CLI, "--state-dir", str(root), "-C", str(tmp_path), *args], capture_output=True,
                              text=True, timeout=60, check=True, env=env)
        return done.stdout
    return call


def test_old_tars_beyond_the_newest_four_are_removed(tmp_path: Path) -> None:
    for age in range(6):
        tar = tmp_path / f"k{age}.tar"
        tar.write_bytes(b"x")
        os.utime(tar, (1_000_000 - age, 1_000_000 - age))  # k0 newest
    _prune(tmp_path, keep=tmp_path / "k5.tar")  # the one just used stays, whatever its time
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k0.tar", "k1.tar", "k2.tar", "k5.tar"]
