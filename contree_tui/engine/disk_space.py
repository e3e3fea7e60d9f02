"""The state dir's free-space floor: below it the engine refuses new writes (uploads: 507; runs and imports end FAILED).

Nothing checked free space before: runs and uploads wrote until the filesystem was full, and then sqlite's
own writes (every event, every status change) failed too. One statvfs costs ~3 µs, so it is checked on
every spawn and upload chunk rather than cached.
"""

from __future__ import annotations

import os

from contree_tui.engine.models import EngineError

INSUFFICIENT_STORAGE = 507


def free_bytes(path: str) -> int:
    """Bytes an unprivileged writer could still use on `path`'s filesystem (root's reserve not counted)."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def require_free(path: str, floor: int, what: str) -> None:
    """Raise a 507 EngineError when `path`'s filesystem has less than `floor` bytes free."""
    free = free_bytes(path)
    if free < floor:
        raise EngineError(
            f"{what}: the engine's disk is nearly full ({free >> 20} MiB free, the floor is {floor >> 20} MiB); "
            "delete images or free space on the state dir's filesystem", status=INSUFFICIENT_STORAGE)
