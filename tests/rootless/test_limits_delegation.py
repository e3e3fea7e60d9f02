"""cgroup v2 delegation as a normal user (#14), on this host's real cgroup2 mount.

systemd's Delegate=yes (user@.service, `systemd-run --user --scope`) hands a user a group by chowning its
directory and its cgroup.procs, cgroup.subtree_control and cgroup.threads. This VM has no systemd, so root
does that here, on the real cgroup2 hierarchy (/sys/fs/cgroup/unified on this hybrid host, /sys/fs/cgroup on
a unified one). This VM's cgroup2 holds only `hugetlb` (memory, pids and cpu are bound to v1), so what runs
under the delegated group cannot be limited here: the tests prove the detector (delegated or not, which
controllers are missing) and the engine's move into a leaf of its group, with the controllers it asks for
passed in; the per-run v2 slots are limits.CgroupPool's, unchanged from root mode but for their base.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contree_tui.engine.sandbox.limit_plan import mount_type
from tests.rootless.conftest import NormalUser

DELEGATED_FILES = ("cgroup.procs", "cgroup.subtree_control", "cgroup.threads")
SCRIPT = """
import json, sys
from pathlib import Path
from contree_tui.engine.sandbox.limit_plan import delegated_v2_group, enter_delegated
root, controllers = Path(sys.argv[1]), tuple(c for c in sys.argv[2].split(",") if c)
group, why = delegated_v2_group(root, controllers=controllers)
if group is not None:
    enter_delegated(group, "contree-tui-test", controllers)
own = [line[3:] for line in open("/proc/self/cgroup").read().splitlines() if line.startswith("0::")]
print(json.dumps({"group": str(group) if group else None, "why": why, "own": own[0] if own else None}))
"""


def _cgroup2_mount() -> Path:
    mountinfo = Path("/proc/self/mountinfo").read_text()
    for candidate in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if mount_type(mountinfo, candidate) == "cgroup2":
            return Path(candidate)
    pytest.skip("no cgroup2 mount on this host")


@pytest.fixture
def group() -> Iterator[Path]:
    """A fresh cgroup2 group, removed afterwards with whatever the test made inside it."""
    path = _cgroup2_mount() / f"ctlimits-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        for child in sorted((p for p in path.rglob("*") if p.is_dir()), reverse=True):
            child.rmdir()
        path.rmdir()


def _detect_in(group: Path, user: NormalUser, controllers: str) -> dict[str, str | None]:
    """Run the detector as `user`, in `group` (root moves the child in before it execs runuser)."""
    pairs = [f"{k}={v}" for k, v in user.env().items()]

    def join_group() -> None:  # in the forked child, still root: "0" moves the writer itself
        with open(group / "cgroup.procs", "w") as fh:
            fh.write("0")

    done = subprocess.run(
        ["runuser", "-u", user.name, "--", "env", "-i", *pairs, str(user.python), "-c", SCRIPT,
         str(group.parent), controllers],
        capture_output=True, text=True, timeout=60, preexec_fn=join_group, cwd="/")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_delegated_group_is_taken_and_the_engine_moves_into_a_leaf(normal_user: NormalUser, group: Path) -> None:
    for name in (".", *DELEGATED_FILES):
        os.chown(group / name, normal_user.uid, normal_user.gid)
    found = _detect_in(group, normal_user, "")
    assert found["group"] == str(group), found
    # the engine left its group for a leaf: a group that hands controllers to children may hold no process
    assert found["own"] == f"/{group.name}/contree-tui-test-engine"


def test_a_group_not_delegated_is_refused_with_the_reason(normal_user: NormalUser, group: Path) -> None:
    found = _detect_in(group, normal_user, "")
    assert found["group"] is None and "is not delegated to this user" in str(found["why"])
    assert "systemd-run --user --scope" in str(found["why"])
    assert found["own"] == f"/{group.name}"  # nothing moved


def test_missing_controllers_are_named(normal_user: NormalUser, group: Path) -> None:
    for name in (".", *DELEGATED_FILES):
        os.chown(group / name, normal_user.uid, normal_user.gid)
    available = (group / "cgroup.controllers").read_text().split()
    missing = [c for c in ("memory", "pids", "cpu") if c not in available]
    if not missing:
        pytest.skip("this host's cgroup2 gives memory, pids and cpu to a new group")
    found = _detect_in(group, normal_user, "memory,pids,cpu")
    assert found["group"] is None and f"controllers {', '.join(missing)} are not available" in str(found["why"])
