"""Limits without root (#14): the plan a normal user's engine makes, and the two kernel facts it rests on,
measured as that user in the user namespace the rootless entry gives (0 -> the user, 1..65535 -> the
subordinate range; util-linux's `unshare --map-auto --map-root-user` makes the same one):

- pid_max is per pid namespace (Linux >= 6.14) and the namespace's root may set it: the per-run pids cap;
- RLIMIT_NPROC is counted per uid per user namespace, so sandboxes sharing one namespace and uid share one
  count: only a backstop for the host, never a per-run cap.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contree_tui.engine.sandbox.limit_plan import RESERVED_PIDS, pid_max_is_per_namespace
from tests.rootless.conftest import NormalUser

USERNS = ("unshare", "--map-auto", "--map-root-user", "--mount", "--propagation", "slave")
PLAN = """
import json
from contree_tui.engine.sandbox.limit_plan import plan_limits
from contree_tui.engine.sandbox.limits import Limits
plan = plan_limits(Limits(pids=100), cgroups=True, max_timeout=3600, engine_group="contree-tui-test")
print(json.dumps({**plan.to_json(Limits(pids=100)), "pid_max": plan.pid_max(Limits(pids=100)),
                  "nproc": plan.nproc_shared}))
"""
# Fork sleeping children until fork fails (or `most`); print how many. argv: RLIMIT_NPROC or 0, pid_max or 0.
FORKS = """
import os, resource, sys, time
nproc, pid_max, hold, most = (int(a) for a in sys.argv[1:5])
if pid_max:
    with open("/proc/sys/kernel/pid_max", "w") as fh:
        fh.write(str(pid_max))
if nproc:
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
kids = []
for _ in range(most):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(hold)
        os._exit(0)
    kids.append(pid)
print(len(kids), flush=True)
for pid in kids:
    os.waitpid(pid, 0)
"""


def test_a_normal_users_engine_plans_rlimits_and_a_pid_namespace_cap(normal_user: NormalUser) -> None:
    done = normal_user.run(*USERNS, str(normal_user.python), "-c", PLAN)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["mode"] == "rootless"
    subuid = next(line.split(":")[1] for line in Path("/etc/subuid").read_text().splitlines()
                  if line.split(":")[0] == normal_user.name)
    assert plan["mode_text"].startswith(f"rootless as uid {normal_user.uid} with ids {normal_user.uid}, {subuid}..")
    if plan["cgroups"] is None:  # this hybrid VM: cgroup v1 needs root, its cgroup2 has no memory/pids/cpu
        assert plan["cgroup_note"], plan
        assert any("RLIMIT_AS" in line for line in plan["limits"])
        assert any("RLIMIT_CPU" in line and "not a share" in line for line in plan["limits"])
        assert plan["nproc"] >= 100
        assert plan["pid_max"] == (RESERVED_PIDS + 100 if pid_max_is_per_namespace() else 0)
    else:  # a host whose systemd delegated memory, pids and cpu to the user's unit
        assert plan["cgroups"] == "v2" and any("delegated" in line for line in plan["limits"])


def test_the_pid_namespace_pid_max_caps_a_run_of_a_normal_user(normal_user: NormalUser) -> None:
    if not pid_max_is_per_namespace():
        pytest.skip("pid_max is per pid namespace only from Linux 6.14")
    host = Path("/proc/sys/kernel/pid_max").read_text()
    done = normal_user.run(*USERNS, "unshare", "--pid", "--fork", str(normal_user.python), "-c", FORKS,
                           "0", str(RESERVED_PIDS + 50), "3", "1000")
    assert done.returncode == 0, done.stderr
    # a fresh namespace starts at pid 1 (this script), so up to pid_max - 2 children before the counter wraps
    assert 50 <= int(done.stdout) <= RESERVED_PIDS + 50 - 2, done.stdout
    assert Path("/proc/sys/kernel/pid_max").read_text() == host  # the host's own is untouched


def test_rlimit_nproc_is_one_count_for_every_sandbox_of_a_uid(normal_user: NormalUser) -> None:
    """Two pid namespaces ("sandboxes") in one user namespace, both uid 0, RLIMIT_NPROC 100 each: the first
    holds its children while the second tries; the second gets what the first left, not 100."""
    sandbox = f"unshare --pid --fork {normal_user.python} -c '{FORKS}' 100 0"
    script = (f"{sandbox} 6 150 > /tmp/first.$$ & sleep 2; {sandbox} 1 150; wait; "
              "cat /tmp/first.$$; rm /tmp/first.$$")
    done = normal_user.run(*USERNS, "sh", "-c", script, timeout=60)
    assert done.returncode == 0, done.stderr
    second, first = (int(n) for n in done.stdout.split())
    assert 90 <= first < 100, done.stdout  # 100 less the namespace's uid-0 processes already running
    assert second <= 100 - first, done.stdout  # shared: measured 96 then 0
