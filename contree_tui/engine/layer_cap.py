"""`max_layer_bytes` enforced while a run writes, not only when it commits.

Before, the cap was RLIMIT_FSIZE (per file) plus a check at commit: a disposable run with a 100 MiB cap
wrote 552 MB in many files and ended SUCCESS. This host's / is ext4 mounted `noquota` (no project quota to
lean on), and a loop-mounted filesystem per run costs a mkfs. So:

- A disposable run's upper is a tmpfs of exactly `max_layer_bytes` (mounted over the run's scratch dir):
  the kernel refuses the write past the cap (ENOSPC), nothing reaches the disk, and nothing is committed
  so the commit's rename is not needed. tmpfs pages are charged to the writer's memory cgroup, so a
  disposable run's files count against its memory limit too (a run that fills both dies of OOM, reported
  as out of memory). Mount + unmount cost ~0.5 ms, done off the event loop.
- A non-disposable run keeps its upper on the state dir's filesystem, so commit stays an O(1) rename; a
  watchdog measures each running upper (the commit's measure, allocated blocks) every POLL_SECONDS or
  4x the last walk's time, whichever is longer, and stops a run past its cap. It also stops writers when
  the filesystem falls below the engine's free-space floor. A writer can get past the cap by what it
  writes between two polls: measured ~1 GB/s to the page cache here, so up to ~100 MB plus the walk time.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Callable

from contree_tui.engine.disk_space import free_bytes
from contree_tui.engine.sandbox import syscalls as sc
from contree_tui.engine.tree_walk import lstat_tree

POLL_SECONDS = 0.1
MNT_DETACH = 2


def mount_layer_tmpfs(run_dir: str, max_bytes: int) -> None:
    """Make `run_dir` a tmpfs of `max_bytes` (the keeper then makes upper/work/merged inside it)."""
    os.mkdir(run_dir, 0o700)
    size = max(4096, (max_bytes + 4095) // 4096 * 4096)
    sc.mount("tmpfs", run_dir, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, f"size={size},mode=0700")


def layer_tmpfs_full(run_dir: str) -> bool:
    """The run filled its tmpfs, i.e. reached its max_layer_bytes (a write past it failed with ENOSPC)."""
    try:
        return os.statvfs(run_dir).f_bavail == 0
    except OSError:
        return False


def unmount_layer_tmpfs(run_dir: str) -> None:
    """Unmount a run's tmpfs: its pages are uncharged from the run's memory cgroup as they are freed."""
    try:
        sc.umount2(run_dir, 0)
    except OSError:
        sc.umount2(run_dir, MNT_DETACH)  # still referenced (a dying sandbox's mount namespace): lazily


def unmount_leftovers(runs_dir: str) -> None:
    """Unmount every mount under `runs_dir` (tmpfs uppers of runs an engine crash left behind)."""
    prefix = runs_dir.rstrip("/") + "/"
    with open("/proc/self/mountinfo") as fh:
        points = [line.split()[4] for line in fh]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        try:
            sc.umount2(point.encode().decode("unicode_escape"), MNT_DETACH)
        except OSError:
            pass


def upper_bytes(upper: str) -> int:
    """What commit would count (layers.scan_upper): blocks allocated to regular files, without touching
    xattrs. Entries vanishing mid-walk (the run is still writing) are skipped."""
    return sum(st.st_blocks * 512 for st in lstat_tree(upper) if stat.S_ISREG(st.st_mode))


def measure_uppers(uppers: list[str]) -> list[int]:
    return [upper_bytes(upper) for upper in uppers]


class LayerWatch:
    """Watches the uppers of running non-disposable runs; `stop(key, reason)` is called for a run past its
    cap or, when the disk is below `min_free`, for every run that has written something."""

    def __init__(self, disk_path: str, min_free: int, stop: Callable[[str, str], None]) -> None:
        self.disk_path = disk_path
        self.min_free = min_free
        self.stop = stop
        self._watched: dict[str, tuple[str, int]] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, key: str, upper: str, max_bytes: int) -> None:
        self._watched[key] = (upper, max_bytes)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll())

    def unwatch(self, key: str) -> None:
        self._watched.pop(key, None)

    async def close(self) -> None:
        self._watched.clear()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _poll(self) -> None:
        try:
            delay = POLL_SECONDS
            while self._watched:
                await asyncio.sleep(delay)
                items = list(self._watched.items())
                if not items:
                    break
                started = time.monotonic()
                sizes = await asyncio.to_thread(measure_uppers, [upper for _, (upper, _) in items])
                delay = max(POLL_SECONDS, 4 * (time.monotonic() - started))  # the walk's cost stays under 20%
                free = free_bytes(self.disk_path)
                for (key, (_, cap)), size in zip(items, sizes, strict=True):
                    if key not in self._watched:
                        continue
                    if size > cap:
                        self.unwatch(key)
                        self.stop(key, f"max_layer_bytes: the run wrote at least {size} bytes, more than its limit "
                                       f"of {cap}; it was stopped and nothing was committed")
                    elif free < self.min_free and size:
                        self.unwatch(key)
                        self.stop(key, f"the engine's disk is nearly full ({free >> 20} MiB free, the floor is "
                                       f"{self.min_free >> 20} MiB): the run was stopped and nothing was committed")
        finally:
            self._task = None
