"""The rootless entry's cost (contree_tui/engine/rootless_entry.py): what a normal user's engine start pays,
once, to become uid 0 of a user namespace of its own, and what the prerequisite checks before it cost.

Run AS A NORMAL USER with a subordinate id range (as root there is nothing to enter), e.g.
    runuser -u ctuser -- env PYTHONPATH=$PWD /opt/ctvenv/bin/python bench/bench_rootless_entry.py
Each entry happens in a forked child of this process (a process enters once), which times itself and reports
on a pipe. Baseline in the same run: util-linux `unshare --map-auto --map-root-user --mount --propagation slave
--pid --fork --mount-proc true`, the same steps (newuidmap, newgidmap, mount and pid namespaces, a fork, /proc)
plus an exec. Goal: entry <= 2x the baseline: util-linux forks a small C program where the entry forks the
Python interpreter into the pid namespace (pid_namespace.py; 3-5 ms here), and the whole is a fixed cost per
engine start (under 1% of a cold `engine run` start, 1.7-3.2 s on this VM); a run never pays it.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time

from common import header, median, ms, spread, verdict

from contree_tui.engine import rootless_entry
from contree_tui.engine.rootless_checks import missing_prerequisites, prerequisites_message

ROUNDS = 30
GOAL = 2.0  # util-linux forks a C program, the entry the interpreter (see the docstring)


def entry_in_child(ids: object) -> float:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read)
        started = time.perf_counter()
        rootless_entry._enter(ids)  # type: ignore[arg-type]
        os.write(write, struct.pack("d", time.perf_counter() - started))
        os._exit(0 if os.geteuid() == 0 else 1)
    os.close(write)
    data = os.read(read, 8)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or len(data) != 8:
        raise SystemExit("the entry failed in the child")
    return struct.unpack("d", data)[0]


def baseline() -> float:
    started = time.perf_counter()
    subprocess.run(["unshare", "--map-auto", "--map-root-user", "--mount", "--propagation", "slave", "--pid",
                    "--fork", "--mount-proc", "true"], check=True)
    return time.perf_counter() - started


def main() -> int:
    header("bench_rootless_entry: a normal user's engine enters its user namespace")
    if os.geteuid() == 0:
        print("run this as a normal user with a /etc/subuid range (see the docstring)", file=sys.stderr)
        return 2
    checks = []
    for _ in range(10):
        started = time.perf_counter()
        missing, ids = missing_prerequisites()
        checks.append(time.perf_counter() - started)
    if missing or ids is None:
        print(prerequisites_message(missing), file=sys.stderr)
        return 2
    entries, bases = [], []
    for i in range(ROUNDS):  # alternating, so that load on a shared machine hits both alike
        if i % 2:
            bases.append(baseline())
            entries.append(entry_in_child(ids))
        else:
            entries.append(entry_in_child(ids))
            bases.append(baseline())
    ratio = median(entries) / median(bases)
    print(f"prerequisite checks (with the fork probe): {spread(checks)}")
    print(f"entry (spawn sh, unshare, newuidmap + newgidmap, mount + pid namespaces, fork, /proc): "
          f"{spread(entries)}")
    print(f"baseline `unshare --map-auto --map-root-user --mount --pid --fork --mount-proc`: {spread(bases)}")
    print(f"entry / baseline = {ratio:.2f}x (goal <= {GOAL:g}x; once per engine start: "
          f"{ms(median(entries) + median(checks))} with the checks) {verdict(ratio <= GOAL)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
