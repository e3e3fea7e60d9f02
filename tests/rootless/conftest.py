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

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
USER = "contree-rootless"
VENVS = Path("/var/tmp/contree-tui-rootless")
SUBID_COUNT = 65536


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"rootless tests cannot run: {why} (scripts/test installs what they need)")
    pytest.skip(why)


def _dependencies() -> list[str]:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return list(tomllib.load(fh)["project"]["dependencies"])


def _user_python() -> Path:
    """A venv with the runtime dependencies, which every user can run (made once per dependency list)."""
    deps = _dependencies()
    base = next((p for p in ("/usr/bin/python3", sys.executable) if Path(p).exists()), sys.executable)
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
        pytest.fail(f"could not install the runtime dependencies for the test user:\n{done.stderr[-2000:]}")
    subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
    (venv / ".complete").write_text("")
    return python


def _subid_line(path: str, user: str) -> bool:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return False
    return any(line.split(":")[0] == user for line in lines)


@dataclass(frozen=True)
class NormalUser:
    name: str
    uid: int
    gid: int
    home: Path
    python: Path
    runtime_dir: Path

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {"PATH": f"{self.python.parent}:/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": str(REPO),
               "HOME": str(self.home), "USER": self.name, "LOGNAME": self.name, "LANG": "C.UTF-8",
               "XDG_RUNTIME_DIR": str(self.runtime_dir), "PYTHONDONTWRITEBYTECODE": "1"}
        env.update(extra or {})
        return env

    def run(self, *argv: str, env: Mapping[str, str] | None = None, timeout: float = 120,
            input: str | None = None, cwd: str | Path | None = None) -> subprocess.CompletedProcess[str]:
        """`argv` as the user, in a clean environment (only what a login would give, plus `env`)."""
        pairs = [f"{k}={v}" for k, v in self.env(env).items()]
        return subprocess.run(["runuser", "-u", self.name, "--", "env", "-i", *pairs, *argv],
                              capture_output=True, text=True, timeout=timeout, input=input,
                              cwd=str(cwd or self.home))

    def cli(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """`contree-tui ARGS` as the user (python -m: the console script is the checkout's own entry)."""
        return self.run(str(self.python), "-m", "contree_tui", *args, **kwargs)  # type: ignore[arg-type]

    def stop_everything(self) -> None:
        subprocess.run(["pkill", "-KILL", "-u", self.name], capture_output=True)


@pytest.fixture(scope="session")
def normal_user() -> Iterator[NormalUser]:
    """The test user, with a subordinate id range, a runtime dir and a Python; removed at the end."""
    if os.geteuid() != 0:
        _unavailable("creating a test user needs root")
    for tool in ("useradd", "userdel", "usermod", "runuser", "newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is missing (apt-get install passwd uidmap util-linux)")
    created = subprocess.run(["id", USER], capture_output=True).returncode != 0
    if created:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True, capture_output=True)
    for path, flag in (("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")):
        if not _subid_line(path, USER):
            start = 300_000_000  # far from useradd's own ranges (100000 up, 65536 each)
            subprocess.run(["usermod", flag, f"{start}-{start + SUBID_COUNT - 1}", USER], check=True)
    uid = int(subprocess.run(["id", "-u", USER], capture_output=True, text=True, check=True).stdout)
    gid = int(subprocess.run(["id", "-g", USER], capture_output=True, text=True, check=True).stdout)
    home = Path(subprocess.run(["getent", "passwd", USER], capture_output=True, text=True,
                               check=True).stdout.split(":")[5])
    runtime = Path(f"/run/user/{uid}")  # what pam_systemd would make at login: 0700, the user's
    runtime.mkdir(parents=True, exist_ok=True)
    os.chown(runtime, uid, gid)
    os.chmod(runtime, 0o700)
    user = NormalUser(USER, uid, gid, home, _user_python(), runtime)
    probe = user.run(str(user.python), "-c", "import contree_tui.engine.engine, contree_tui.cli")
    if probe.returncode != 0:
        pytest.fail(f"{USER} cannot import the checkout at {REPO}:\n{probe.stderr[-2000:]}")
    try:
        yield user
    finally:
        user.stop_everything()
        if created:
            subprocess.run(["userdel", "-r", USER], capture_output=True)
            shutil.rmtree(runtime, ignore_errors=True)
