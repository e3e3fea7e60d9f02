"""Running an engine scenario (engine_scenarios.py) as the normal user, inside the namespace the rootless entry
gives the engine: a user namespace mapping 0 to the user and 1..N to their subordinate range, a private mount
namespace (/ a slave), and a pid namespace of its own with its /proc (the engine starts every keeper and helper
as pid 1 of a new pid namespace, and must come back to its own: userns.require_own_pid_namespace).

The scenario enters it through the real entry (rootless_entry.enter_rootless_namespace, as `engine serve` does:
newuidmap/newgidmap, mount and pid namespaces). util-linux's unshare (STAND_IN) stays for what the entry does not
make: a namespace with a short range (short_range), or without a pid namespace of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.rootless.conftest import NormalUser

STAND_IN = ("unshare", "--map-auto", "--map-root-user", "--mount", "--propagation", "slave",
            "--pid", "--fork", "--mount-proc")


@contextmanager
def user_dirs(user: NormalUser) -> Iterator[tuple[Path, Path]]:
    """(a state dir path, a work dir) in the user's home, the work dir theirs; both removed afterwards (as root:
    the state holds files of the user's subordinate ids)."""
    key = uuid.uuid4().hex[:8]
    state, work = user.home / f"engine-state-{key}", user.home / f"engine-work-{key}"
    work.mkdir()
    os.chown(work, user.uid, user.gid)
    try:
        yield state, work
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def short_range(user: NormalUser, count: int) -> tuple[str, ...]:
    """The stand-in with only `count` - 1 of the user's subordinate ids mapped (a user given a short range)."""
    starts = {}
    for path in ("/etc/subuid", "/etc/subgid"):
        with open(path) as fh:
            starts[path] = next(int(line.split(":")[1]) for line in fh if line.split(":")[0] == user.name)
    return ("unshare", f"--map-users={starts['/etc/subuid']},1,{count - 1}",
            f"--map-groups={starts['/etc/subgid']},1,{count - 1}", "--map-root-user", *STAND_IN[3:])


def run_scenario(user: NormalUser, name: str, state: Path, work: Path, timeout: float = 300,
                 stand_in: tuple[str, ...] = ()) -> dict[str, Any]:
    """The scenario's observations (its last stdout line); fails with its stderr if it did not finish. Without
    `stand_in` the scenario enters its namespaces through the real entry; with one it is already uid 0 there and
    the entry has nothing to do."""
    done = user.run(*stand_in, str(user.python), "-m", "tests.rootless.engine_scenarios", name, str(state),
                    str(work), timeout=timeout)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines, f"scenario {name} failed ({done.returncode}):\n{done.stderr[-4000:]}"
    return json.loads(lines[-1])
