"""The rootless tests' normal user, without pytest: what conftest.py's `normal_user` fixture does (useradd with
a subordinate id range, a runtime dir, a venv of Debian's Python holding the runtime dependencies), for the
code that is not a test and needs the same user: bench/bench_rootless.py. The venv is keyed as conftest.py
keys it (base Python + dependency list), so both find the one venv a machine builds.

Needs root. Errors are RuntimeError with the reason (a missing tool names its Debian package).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
USER = "contree-rootless"
VENVS = Path("/var/tmp/contree-tui-rootless")
SUBID_COUNT = 65536
SUBID_START = 300_000_000  # far from useradd's own ranges (100000 up, 65536 each)
TUN = "/dev/net/tun"
TOOLS = {"useradd": "passwd", "userdel": "passwd", "usermod": "passwd", "runuser": "util-linux",
         "newuidmap": "uidmap", "newgidmap": "uidmap", "unshare": "util-linux"}


def login_env(name: str, home: Path, python: Path, runtime_dir: Path,
              extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a login would give the user, the checkout on PYTHONPATH and the venv's bin on PATH, plus `extra`."""
    env = {"PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": str(REPO),
           "HOME": str(home), "USER": name, "LOGNAME": name, "LANG": "C.UTF-8",
           "XDG_RUNTIME_DIR": str(runtime_dir), "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class UserKit:
    name: str
    uid: int
    gid: int
    home: Path
    python: Path  # the venv's: every user can run it, and it holds the runtime dependencies
    runtime_dir: Path
    created: bool  # made here: remove() deletes it again

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return login_env(self.name, self.home, self.python, self.runtime_dir, extra)

    def argv(self, *argv: str, env: Mapping[str, str] | None = None) -> list[str]:
        """`argv` as the user in a clean environment (runuser + env -i)."""
        pairs = [f"{k}={v}" for k, v in self.env(env).items()]
        return ["runuser", "-u", self.name, "--", "env", "-i", *pairs, *argv]

    def remove(self) -> None:
        """Delete the user if ensure_user made it (its processes must have ended: userdel refuses otherwise)."""
        if self.created:
            subprocess.run(["userdel", "-r", self.name], capture_output=True)
            shutil.rmtree(self.runtime_dir, ignore_errors=True)


def missing_tools() -> list[str]:
    return [f"{tool} ({package})" for tool, package in TOOLS.items() if shutil.which(tool) is None]


def dependencies() -> list[str]:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return list(tomllib.load(fh)["project"]["dependencies"])


def user_python(base: str | None = None) -> Path:
    """A venv with the runtime dependencies, which every user can run (made once per dependency list)."""
    deps = dependencies()
    base = base or next(p for p in ("/usr/bin/python3", shutil.which("python3") or "") if p and Path(p).exists())
    key = hashlib.sha256("\n".join([base, *deps]).encode()).hexdigest()[:12]
    venv = VENVS / key
    python = venv / "bin" / "python"
    if (venv / ".complete").exists():
        return python
    VENVS.mkdir(parents=True, exist_ok=True)
    os.chmod(VENVS, 0o755)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *deps],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"could not install the runtime dependencies for {USER}:\n{done.stderr[-2000:]}")
    subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
    (venv / ".complete").write_text("")
    return python


def has_subid_line(path: str, user: str) -> bool:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return False
    return any(line.split(":")[0] == user for line in lines)


def ensure_user(name: str = USER, subid_start: int = SUBID_START) -> UserKit:
    """The user, created if missing, with a subordinate range (from `subid_start` if it has none), /run/user/UID
    (0700) and the venv."""
    if os.geteuid() != 0:
        raise RuntimeError("creating the normal user needs root")
    if missing := missing_tools():
        raise RuntimeError(f"missing: {', '.join(missing)} (apt-get install passwd uidmap util-linux)")
    created = subprocess.run(["id", name], capture_output=True).returncode != 0
    if created:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)
    for path, flag in (("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")):
        if not has_subid_line(path, name):
            subprocess.run(["usermod", flag, f"{subid_start}-{subid_start + SUBID_COUNT - 1}", name], check=True)
    uid = int(subprocess.run(["id", "-u", name], capture_output=True, text=True, check=True).stdout)
    gid = int(subprocess.run(["id", "-g", name], capture_output=True, text=True, check=True).stdout)
    home = Path(subprocess.run(["getent", "passwd", name], capture_output=True, text=True,
                               check=True).stdout.split(":")[5])
    runtime = Path(f"/run/user/{uid}")  # what pam_systemd would make at login
    runtime.mkdir(parents=True, exist_ok=True)
    os.chown(runtime, uid, gid)
    os.chmod(runtime, 0o700)
    return UserKit(name, uid, gid, home, user_python(), runtime, created)


@contextlib.contextmanager
def usable_tun() -> Iterator[None]:
    """/dev/net/tun as Debian ships it (0666), for as long as the block runs; its mode is put back after. A
    rootless run's network (pasta) attaches there, and runs are networked unless they ask otherwise: this VM
    ships it 0600, where the engine refuses them with the chmod that fixes it."""
    if not os.path.exists(TUN):
        yield
        return
    mode = stat.S_IMODE(os.stat(TUN).st_mode)
    os.chmod(TUN, mode | 0o666)
    try:
        yield
    finally:
        os.chmod(TUN, mode)
