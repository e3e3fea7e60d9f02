"""Which host ids the sandboxes' user namespace maps to: shared by the engine (sandbox/userns.py) and the
client (client/userns_spawn.py, the Debian bootstrap), which must agree and may not import each other.

Sandbox id i is host uid uid_base+i and host gid gid_base+i, for i < count: the `contree-tui:START:COUNT`
line of /etc/subuid and /etc/subgid when there is one with COUNT >= 65536, else 1,000,000,000.
"""

from __future__ import annotations

from dataclasses import dataclass

SUBID_OWNER = "contree-tui"
DEFAULT_BASE = 1_000_000_000  # above login.defs' SUB_UID_MAX (600,100,000): useradd never hands these out
ID_COUNT = 65536  # what an image's files may own: 0..65535, nobody (65534) included


@dataclass(frozen=True)
class IdRange:
    uid_base: int = DEFAULT_BASE
    gid_base: int = DEFAULT_BASE
    count: int = ID_COUNT

    @classmethod
    def from_host(cls) -> IdRange:
        uid = subordinate_range("/etc/subuid")
        gid = subordinate_range("/etc/subgid")
        return cls(uid[0] if uid else DEFAULT_BASE, gid[0] if gid else DEFAULT_BASE)


def subordinate_range(path: str) -> tuple[int, int] | None:
    """The first `contree-tui:start:count` line of `path` with count >= ID_COUNT."""
    try:
        with open(path) as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, rest = line.strip().partition(":")
        start, _, count = rest.partition(":")
        if name == SUBID_OWNER and start.isdigit() and count.isdigit() and int(count) >= ID_COUNT:
            return int(start), int(count)
    return None
