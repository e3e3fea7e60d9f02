"""`engine serve` by a normal user first enters a user namespace of its own (engine/rootless_entry.py): uid 0
there with every capability, the user's own id as 0 and its /etc/subuid range from 1, a mount namespace whose
mounts stay inside, pid 1 of a pid namespace with its own /proc, and privilege.running_rootless() True."""

from __future__ import annotations

import json
from pathlib import Path

from tests.rootless.conftest import NormalUser

ENTER = """
import json, os, subprocess
before = os.getpid()
from contree_tui.engine import privilege
from contree_tui.engine.rootless_entry import engine_host_pid, enter_rootless_namespace
rootless_before = privilege.running_rootless()
seconds = enter_rootless_namespace()
caps = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff:"))
mounted = subprocess.run(["mount", "-t", "tmpfs", "probe", "/mnt"], capture_output=True, text=True)
print(json.dumps({
    "pid": os.getpid(), "host_pid": engine_host_pid(), "before": before,
    "proc_pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "ids": os.getresuid() + os.getresgid(), "caps": caps,
    "uid_map": open("/proc/self/uid_map").read().split(), "gid_map": open("/proc/self/gid_map").read().split(),
    "rootless_before": rootless_before, "rootless": privilege.running_rootless(),
    "mapped": privilege.mapped_id_count(), "mounted": mounted.returncode, "seconds": seconds,
    "root_mount": next(l for l in open("/proc/self/mountinfo") if l.split()[4] == "/"),
}))
"""


def _subids(path: str, name: str) -> list[str]:
    line = next(line for line in Path(path).read_text().splitlines() if line.split(":")[0] == name)
    return line.split(":")[1:]


def test_the_entry_makes_the_user_uid_0_of_its_own_namespace_with_its_subordinate_range(
        normal_user: NormalUser) -> None:
    done = normal_user.run(str(normal_user.python), "-c", ENTER)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["pid"] == 1  # pid 1 of a pid namespace of its own: its death ends every sandbox ...
    assert seen["host_pid"] == seen["before"]  # ... and the pid file names the process started, its relay
    assert seen["proc_pids"][0] == 1  # its /proc is its pid namespace's (the mount, then only what it runs)
    assert len(seen["proc_pids"]) <= 2
    assert seen["ids"] == [0, 0, 0, 0, 0, 0]
    assert int(seen["caps"], 16) & (1 << 21)  # CAP_SYS_ADMIN, in that namespace
    start, count = _subids("/etc/subuid", normal_user.name)
    assert seen["uid_map"] == ["0", str(normal_user.uid), "1", "1", start, count]
    start, count = _subids("/etc/subgid", normal_user.name)
    assert seen["gid_map"] == ["0", str(normal_user.gid), "1", "1", start, count]
    assert seen["rootless_before"] is False and seen["rootless"] is True
    assert seen["mapped"] == 1 + int(count)
    assert seen["mounted"] == 0  # it may mount, in a mount namespace of its own ...
    assert "shared:" not in seen["root_mount"].split(" - ")[0]  # ... whose / propagates nothing out (slave)
    assert seen["seconds"] < 1.0

