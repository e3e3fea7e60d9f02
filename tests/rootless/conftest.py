"""A normal user to run the product as (#14): created here (useradd, with a /etc/subuid and /etc/subgid range),
with a Python it can run and the checkout on its PYTHONPATH.

CI runs as root, and /root (where CI's own Python lives) is 0700: the user gets a virtual environment of
Debian's /usr/bin/python3 under /var/tmp, holding the project's runtime dependencies (built once per machine,
keyed by the dependency list, ~20 s; world-readable, owned by root, so the user cannot change it). The code
under test is the checkout itself (PYTHONPATH), never a copy.

Where the machine cannot (no useradd, runuser or newuidmap) the tests are skipped with the reason, except in
CI (`CI` set), where scripts/test installs all of them: there a missing tool fails, never silently skips.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.rootless.user_kit import has_subid_line, login_env, usable_tun, user_python

TUN = "/dev/net/tun"

REPO = Path(__file__).resolve().parents[2]
USER = "contree-rootless"
USER_WITHOUT_SUBIDS = "contree-nosubids"
VENVS = Path("/var/tmp/contree-tui-rootless")
# Held shared by every test session using the users, so that the last one out removes them (several sessions
# may run at once on a developer's machine; CI runs one).
USERS_LOCK = VENVS / "users.lock"
SUBID_COUNT = 65536


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"rootless tests cannot run: {why} (scripts/test installs what they need)")
    pytest.skip(why)


def _user_python() -> Path:
    """The venv user_kit.py builds (shared with bench/bench_rootless.py), or the test fails saying why."""
    try:
        return user_python()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        pytest.fail(str(exc))


@dataclass(frozen=True)
class NormalUser:
    name: str
    uid: int
    gid: int
    home: Path
    python: Path
    runtime_dir: Path
    state_dirs: list[Path] = field(default_factory=list, compare=False)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return login_env(self.name, self.home, self.python, self.runtime_dir, extra)

    def run(self, *argv: str, env: Mapping[str, str] | None = None, timeout: float = 120,
            input: str | None = None, cwd: str | Path | None = None) -> subprocess.CompletedProcess[str]:
        """`argv` as the user, in a clean environment (only what a login would give, plus `env`)."""
        pairs = [f"{k}={v}" for k, v in self.env(env).items()]
        return subprocess.run(["runuser", "-u", self.name, "--", "env", "-i", *pairs, *argv],
                              capture_output=True, text=True, timeout=timeout, input=input,
                              cwd=str(cwd or self.home))

    def popen(self, *argv: str, env: Mapping[str, str] | None = None,
              cwd: str | Path | None = None) -> subprocess.Popen[str]:
        """`argv` as the user, in the background (the caller waits or kills it, by its pid)."""
        pairs = [f"{k}={v}" for k, v in self.env(env).items()]
        return subprocess.Popen(["runuser", "-u", self.name, "--", "env", "-i", *pairs, *argv],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(cwd or self.home))

    def cli(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """`contree-tui ARGS` as the user (python -m: the console script is the checkout's own entry)."""
        return self.run(str(self.python), "-m", "contree_tui", *args, **kwargs)  # type: ignore[arg-type]

    def new_state_dir(self) -> Path:
        """A path for an engine state dir of the user's own (not made yet: the engine makes it). Its engine is
        stopped and the dir removed when the session ends."""
        path = Path("/tmp") / f"contree-rootless-{uuid.uuid4().hex[:12]}"
        self.state_dirs.append(path)
        return path

    def engine_pid(self, state: Path) -> int | None:
        try:
            pid = int((state / "engine.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def stop_engines(self) -> None:
        """Stop the engines of this session's state dirs (by their pids: only what the tests started) and
        remove the dirs (as root: files owned by the user's subordinate ids and overlay's mode-000 work dirs
        included)."""
        for state in self.state_dirs:
            pid = self.engine_pid(state)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            shutil.rmtree(state, ignore_errors=True)
        self.state_dirs.clear()


def _id(flag: str, name: str) -> int:
    return int(subprocess.run(["id", flag, name], capture_output=True, text=True, check=True).stdout)


def _make_user(name: str, python: Path, *, subids: bool) -> NormalUser:
    """The user `name` (created if absent; with a subordinate range, or explicitly none), its runtime dir
    (what pam_systemd makes at login: /run/user/UID, 0700, the user's) and the shared Python."""
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        # useradd gives a new user a subordinate range when /etc/subuid exists; SUB_*_COUNT=0 gives none
        none = [] if subids else ["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"]
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", *none, name], check=True, capture_output=True)
    if subids:
        for path, flag in (("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")):
            if not has_subid_line(path, name):
                start = 300_000_000  # far from useradd's own ranges (100000 up, 65536 each)
                subprocess.run(["usermod", flag, f"{start}-{start + SUBID_COUNT - 1}", name], check=True)
    elif has_subid_line("/etc/subuid", name) or has_subid_line("/etc/subgid", name):
        pytest.fail(f"{name} must have no subordinate ids, and /etc/subuid or /etc/subgid gives it some")
    uid, gid = _id("-u", name), _id("-g", name)
    home = Path(subprocess.run(["getent", "passwd", name], capture_output=True, text=True,
                               check=True).stdout.split(":")[5])
    runtime = Path(f"/run/user/{uid}")
    runtime.mkdir(parents=True, exist_ok=True)
    os.chown(runtime, uid, gid)
    os.chmod(runtime, 0o700)
    user = NormalUser(name, uid, gid, home, python, runtime)
    probe = user.run(str(user.python), "-c", "import contree_tui.engine.engine, contree_tui.cli")
    if probe.returncode != 0:
        pytest.fail(f"{name} cannot import the checkout at {REPO}:\n{probe.stderr[-2000:]}")
    return user


@pytest.fixture(scope="session")
def rootless_users() -> Iterator[dict[str, NormalUser]]:
    """Both test users: `normal` (a subordinate range: what the rootless engine needs) and `without_subids`
    (none: what a missing /etc/subuid line looks like); removed at the end by the last session using them."""
    if os.geteuid() != 0:
        _unavailable("creating a test user needs root")
    for tool in ("useradd", "userdel", "usermod", "runuser", "newuidmap", "newgidmap", "unshare", "setpriv"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is missing (apt-get install passwd uidmap util-linux)")
    python = _user_python()
    lock = os.open(USERS_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_SH)
    users: dict[str, NormalUser] = {}
    try:
        for key, name, subids in (("normal", USER, True), ("without_subids", USER_WITHOUT_SUBIDS, False)):
            users[key] = _make_user(name, python, subids=subids)
        yield users
    finally:
        for user in users.values():
            user.stop_engines()
        try:  # the last session out (no other holds the lock shared) removes the users
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            for user in users.values():
                subprocess.run(["userdel", "-r", user.name], capture_output=True)
                shutil.rmtree(user.runtime_dir, ignore_errors=True)
        os.close(lock)


@pytest.fixture(scope="session")
def normal_user(rootless_users: dict[str, NormalUser]) -> NormalUser:
    """The test user, with a subordinate id range, a runtime dir and a Python."""
    return rootless_users["normal"]


@pytest.fixture(scope="session")
def user_without_subids(rootless_users: dict[str, NormalUser]) -> NormalUser:
    """A user that useradd gave no /etc/subuid or /etc/subgid line (`-K SUB_UID_COUNT=0`)."""
    return rootless_users["without_subids"]


@pytest.fixture
def tun_mode() -> Iterator[None]:
    """Whatever mode /dev/net/tun has now is put back afterwards (for a test that changes it)."""
    mode = stat.S_IMODE(os.stat(TUN).st_mode)
    try:
        yield
    finally:
        os.chmod(TUN, mode)


@pytest.fixture(scope="session")
def debian_tun() -> Iterator[None]:
    """/dev/net/tun as Debian ships it (0666), for tests whose runs have networking on (the CLI's default): a
    rootless engine's pasta opens it as the user, and some VMs (this one) make it 0600; put back afterwards."""
    with usable_tun():
        yield
