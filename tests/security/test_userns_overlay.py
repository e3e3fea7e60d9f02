"""An overlay mounted by the wrong creds comes up read-only, silently: with fsuid 0 its work dir cannot be
made through an idmapped upper that does not map 0 (EOVERFLOW; the kernel only says so in dmesg) and the
mount call still succeeds. syscalls.overlay_mount (and keeper.c's) now refuse such a mount, so a run can
never start on a root it cannot write (before, it did, and every write failed with EROFS); with fsuid BASE
(userns.enter_keeper, as every keeper does) it mounts read-write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import os, sys
from contree_tui.engine.sandbox import syscalls as sc, userns
top = sys.argv[1]
users = userns.open_sandbox_users(userns.SandboxIds(), [f"{top}/up"])
sc.setns(users.mntns_fd, sc.CLONE_NEWNS)  # a private mount namespace: nothing is left on the host
def attempt(name):
    os.makedirs(f"{top}/{name}")
    try:
        sc.overlay_mount([f"{top}/lower"], f"{top}/up/{name}-u", f"{top}/up/{name}-w", f"{top}/{name}")
    except OSError as exc:
        return f"refused errno={exc.errno}"
    return "writable" if os.access(f"{top}/{name}", os.W_OK) and not os.statvfs(f"{top}/{name}").f_flag & 1 else "ro"
print("fsuid0", attempt("a"))
userns.enter_keeper(users)
print("fsuid-base", attempt("b"))
"""


def test_a_read_only_fallback_is_refused_and_fsuid_base_mounts(tmp_path: Path) -> None:
    for name in ("lower", "up/a-u", "up/a-w", "up/b-u", "up/b-w"):
        (tmp_path / name).mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=60, check=False, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["fsuid0 refused errno=30", "fsuid-base writable"], done.stdout
