"""Which of its two modes the engine runs in (#14).

- root: uid 0 of the host's initial user namespace (its uid_map is the identity over every id).
- rootless: uid 0 of a user namespace that a normal user entered through newuidmap/newgidmap, whose id 0 is
  that user and ids 1..N their /etc/subuid range. Capabilities hold there only: overlay needs `userxattr`,
  opaque dirs are `user.overlay.opaque`, idmapped mounts of the host's filesystems are refused, and only
  the ids in the map exist (files of an image may own 0..N).

Decided by reading /proc/self/uid_map (a few µs), so every module asks the same question the same way.
"""

from __future__ import annotations

import functools
import os

IDENTITY_MAP = (0, 0, 4294967295)  # the initial user namespace's single line


def uid_map(path: str = "/proc/self/uid_map") -> list[tuple[int, int, int]]:
    """The lines of a uid_map (or gid_map): (first id inside, first id outside, count)."""
    with open(path) as fh:
        return [tuple(int(part) for part in line.split()) for line in fh if line.strip()]  # type: ignore[misc]


def in_initial_user_namespace() -> bool:
    return uid_map() == [IDENTITY_MAP]


@functools.cache
def running_rootless() -> bool:
    """True in the engine a normal user started: uid 0, but of a user namespace of its own. (Cached: a
    process never changes user namespace after the engine's entry, which happens before this is asked.)"""
    return os.geteuid() == 0 and not in_initial_user_namespace()


def mapped_id_count(path: str = "/proc/self/uid_map") -> int:
    """How many consecutive ids from 0 the namespace maps (rootless: 1 + the subordinate range's count)."""
    count = 0
    for inside, _outside, length in sorted(uid_map(path)):
        if inside != count:
            break
        count += length
    return count
