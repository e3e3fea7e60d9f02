"""`contree-tui engine bootstrap debian` as a normal user (#14): mmdebstrap's own `--mode=unshare` (newuidmap and
/etc/subuid) builds, in that user's cache, the tar root's bootstrap builds: the same files with the same
owners (root's files uid 0 in it), modes and sizes; imported into the user's engine, the image shows those
owners inside its sandbox and python3 runs there.

One build (~50 s, more on a loaded machine): the user's cache lives under the test user's venv directory,
kept between sessions (a second session imports only); root's tar is the seeds' (built once per machine).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from contree_tui.client.debian_bootstrap import Tarball, default_suite
from contree_tui.client.userns_spawn import maps_host_ids
from tests.rootless.conftest import REPO, VENVS, NormalUser
from tests.rootless.user_kit import usable_tun
from tests.seeds.conftest import bootstrap_cache, debian_tarball  # noqa: F401  (fixtures: root's tar)

NOBODY, NOBODY_GROUP = 65534, 65534  # Debian's nobody:nogroup
BUILD_TIMEOUT = 900  # seconds: ~50 s alone, 90-130 s measured while five other suites shared the 2 cores
# apt's download dirs: _apt's (42) when apt could drop to _apt, root's in tars that root's bootstrap built
# before it made its staging dir readable (apt then downloaded unsandboxed): both are the image Debian makes
APT_PARTIAL = {"./var/cache/apt/archives/partial", "./var/lib/apt/lists/partial"}
# What a sandbox has of its own over the image: /dev (bind-mounted nodes), /proc and /sys (not walked), and a
# networked run's /etc/resolv.conf (the host's resolvers, engine/sandbox/network.py)
SANDBOX_OWN = {"dev", "proc", "sys", "etc/resolv.conf"}
# The image's tree as the sandbox shows it: path, uid, gid, permission bits, size of a regular file
WALK = r"""
import os, stat
for top, dirs, files in os.walk("/"):
    if top == "/":
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
    for name in dirs + files:
        path = os.path.join(top, name)
        st = os.lstat(path)
        size = st.st_size if stat.S_ISREG(st.st_mode) else 0
        print("." + path, st.st_uid, st.st_gid, oct(stat.S_IMODE(st.st_mode)), size)
"""


def tar_listing(path: Path) -> dict[str, tuple[int, int, str, int]]:
    """Member -> (uid, gid, permission bits, size of a regular file): what the image's files will be (a hard
    link is its target's file)."""
    listing: dict[str, tuple[int, int, str, int]] = {}
    with tarfile.open(path) as tar:
        for m in tar:
            if m.name in (".", "./"):
                continue
            size = m.size if m.isreg() else listing[f"./{m.linkname.removeprefix('./')}"][3] if m.islnk() else 0
            listing[m.name.rstrip("/")] = (m.uid, m.gid, oct(m.mode & 0o7777), size)
    return listing


def without_apt_partial(listing: dict[str, tuple[int, int, str, int]]) -> dict[str, tuple[int, int, str, int]]:
    return {name: (0, 0, *rest[2:]) if name in APT_PARTIAL else rest for name, rest in listing.items()}


@pytest.fixture(scope="module")
def user_cache(normal_user: NormalUser) -> Path:
    """The user's XDG_CACHE_HOME: kept between sessions, re-owned (the user may be re-created, another uid)."""
    cache = VENVS / "user-cache"
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chown", "-R", f"{normal_user.uid}:{normal_user.gid}", str(cache)], check=True)
    os.chmod(cache, 0o700)
    return cache


@pytest.fixture(scope="module")
def user_tarball(normal_user: NormalUser, user_cache: Path) -> Path:
    """The default bootstrap's tar, built by the user (the client's own step: no engine involved)."""
    code = ("import asyncio, sys\n"
            "from contree_tui.client.debian_bootstrap import BootstrapSpec, default_suite, ensure_tarball\n"
            "say = lambda line: print(line, file=sys.stderr, flush=True)\n"
            "print(asyncio.run(ensure_tarball(BootstrapSpec(default_suite()), say)).path)\n")
    done = normal_user.run(str(normal_user.python), "-c", code, env={"XDG_CACHE_HOME": str(user_cache)},
                           timeout=BUILD_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.parent == user_cache / "contree-tui" / "bootstrap"  # the user's own cache, not root's
    return path


def test_the_users_tar_is_roots_image_file_for_file(user_tarball: Path, debian_tarball: Tarball,  # noqa: F811
                                                    normal_user: NormalUser) -> None:
    assert user_tarball.name == debian_tarball.path.name  # the same inputs: the same cache key
    assert (user_tarball.stat().st_uid, user_tarball.stat().st_mode & 0o777) == (normal_user.uid, 0o644)
    mine, roots = tar_listing(user_tarball), tar_listing(debian_tarball.path)
    assert len(mine) > 5000
    assert mine["./usr/bin/python3.11"][:2] == (0, 0)  # root's files are uid 0 in the tar, not the user's uid
    assert mine["./etc/shadow"][:3] == (0, 42, "0o640")  # and other ids kept: group shadow
    assert mine["./var/cache/apt/archives/partial"][:2] == (42, 0)  # apt downloaded as _apt, as in Debian
    assert without_apt_partial(mine) == without_apt_partial(roots)


def test_bootstrap_imports_into_the_users_engine_and_python_runs(user_tarball: Path, normal_user: NormalUser,
                                                                   user_cache: Path) -> None:
    state = normal_user.home / "bootstrap-engine"
    env = {"XDG_CACHE_HOME": str(user_cache)}
    with usable_tun():  # runs are networked by default, through /dev/net/tun: 0666 on Debian, 0600 on this VM
        try:
            done = normal_user.cli("engine", "bootstrap", "debian", "--state-dir", str(state), env=env, timeout=600)
            assert done.returncode == 0, done.stderr[-3000:]
            assert "bootstrap: cached " in done.stderr  # the build above: an import only
            assert f"(tag debian:{default_suite()})" in done.stdout
            ran = normal_user.cli("engine", "run", "--state-dir", str(state), "--image", f"debian:{default_suite()}",
                                  "--disposable", "--", "python3 -c " + shlex.quote(WALK), env=env, timeout=300)
            assert ran.returncode == 0, ran.stderr[-3000:]
            seen = {}
            for line in ran.stdout.splitlines():
                name, uid, gid, mode, size = line.rsplit(" ", 4)
                seen[name] = (int(uid), int(gid), mode, int(size))
            expected = {name: entry for name, entry in tar_listing(user_tarball).items()
                        if not {name[2:], name[2:].split("/")[0]} & SANDBOX_OWN}
            differing = {name: (seen.get(name), entry) for name, entry in expected.items() if seen.get(name) != entry}
            assert not differing, differing  # python3 ran, and saw the tar's files with their owners
        finally:
            normal_user.cli("engine", "stop", "--state-dir", str(state), timeout=60)
            shutil.rmtree(state, ignore_errors=True)  # as root: subordinate owners, overlay's mode-0 work dirs


def test_only_host_root_maps_the_bootstrap_namespace_itself(normal_user: NormalUser) -> None:
    # uid 0 of the user's own namespace (the rootless engine's shape) may not map the sandbox range (EPERM):
    # it leaves the namespace to mmdebstrap, as the user does
    code = "from contree_tui.client.userns_spawn import maps_host_ids; print(maps_host_ids())"
    inside = normal_user.run("unshare", "--map-auto", "--map-root-user", str(normal_user.python), "-c", code)
    assert inside.stdout == "False\n", inside.stderr
    assert normal_user.run(str(normal_user.python), "-c", code).stdout == "False\n"
    assert maps_host_ids() is (os.geteuid() == 0)


def test_a_user_without_subordinate_ids_reads_what_the_administrator_runs(normal_user: NormalUser) -> None:
    # `nobody` has no /etc/subuid line on any Debian; mmdebstrap's own error was "failed to parse /etc/subuid"
    home = Path(tempfile.mkdtemp(prefix="contree-nosubids-"))
    staging_before = set(Path(tempfile.gettempdir()).glob("contree-tui-bootstrap-*"))
    try:
        os.chown(home, NOBODY, NOBODY_GROUP)
        env = [f"PATH={normal_user.python.parent}:/usr/bin:/bin", f"PYTHONPATH={REPO}", f"HOME={home}",
               "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"]
        done = subprocess.run(["runuser", "-u", "nobody", "--", "env", "-i", *env, str(normal_user.python), "-m",
                               "contree_tui", "engine", "bootstrap", "debian", "--include", ""], cwd=home,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1
        assert done.stderr.splitlines()[-1] == (
            "contree-tui: bootstrap: nobody has no subordinate ids in /etc/subuid and /etc/subgid, which mmdebstrap "
            "needs to build as a normal user (the package files belong to root and system users); an administrator "
            "gives them once: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 nobody "
            "(any 65536 ids no other user has)")
        assert set(Path(tempfile.gettempdir()).glob("contree-tui-bootstrap-*")) <= staging_before  # none left
    finally:
        shutil.rmtree(home, ignore_errors=True)
