"""Resource limits for a run: memory, CPU and a pids cap through cgroups where the host allows (which mechanism
enforces what, and the rlimits every run gets: limit_plan.py).

This machine kind has a hybrid cgroup v1 layout (v2 mounted with only `hugetlb`), where v1 limits work as
root; elsewhere cgroup v2 is usual. Creating and removing groups costs ~4 ms a run, more than a bare launch,
so groups are pooled: a slot is created once and reused by the next run once its processes are gone.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "cpu", "pids")
CFS_PERIOD_US = 100_000


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 4 << 30
    cpus: float = float(os.cpu_count() or 1)
    pids: int = 1024
    open_files: int = 65536
    cpu_seconds: int = 0  # RLIMIT_CPU where there are no cgroups (limit_plan.py); 0: cpus x max_timeout


def detect_cgroup_version() -> int | None:
    """2 for a unified hierarchy with memory+pids delegated to us, 1 for usable v1 controllers, else None."""
    if os.geteuid() != 0:
        return None
    controllers = CGROUP_ROOT / "cgroup.controllers"
    if controllers.exists():
        available = controllers.read_text().split()
        if {"memory", "pids", "cpu"} <= set(available):
            return 2
        return None
    if all((CGROUP_ROOT / c / "cgroup.procs").exists() for c in V1_CONTROLLERS):
        return 1
    return None


class CgroupPool:
    def __init__(self, name: str, version: int | None, base: Path = CGROUP_ROOT) -> None:
        self.version = version
        self.base = base  # v2: the group the engine's group goes in (a delegated one when rootless)
        self.name = name
        self._free: list[str] = []
        self._count = 0
        self._applied: dict[str, Limits] = {}  # a reused slot keeps its limits; rewrite only on change
        self._slot_dirs: dict[str, list[Path]] = {}  # asked for on every run: built once per slot
        self._procs: dict[str, list[str]] = {}
        self._oom_seen: dict[str, int] = {}  # a slot's oom_kill count when its last run ended

    @property
    def enabled(self) -> bool:
        return self.version is not None

    def _dirs(self, slot: str) -> list[Path]:
        dirs = self._slot_dirs.get(slot)
        if dirs is None:
            if self.version == 2:
                dirs = [self.base / self.name / slot]
            else:
                dirs = [CGROUP_ROOT / c / self.name / slot for c in V1_CONTROLLERS]
            self._slot_dirs[slot] = dirs
        return dirs

    def acquire(self, limits: Limits) -> tuple[str, list[str]]:
        """A slot with `limits` applied and the cgroup.procs files a new process must join."""
        if self._free:
            slot = self._free.pop()
        else:
            self._count += 1
            slot = f"slot{self._count}-{os.getpid()}"
            if self.version == 2:
                parent = self.base / self.name
                parent.mkdir(exist_ok=True)
                (parent / "cgroup.subtree_control").write_text("+memory +pids +cpu")
            for d in self._dirs(slot):
                d.mkdir(parents=True, exist_ok=True)
        self.ensure_limits(slot, limits)
        return slot, self.procs_files(slot)

    def limit_total(self, memory_bytes: int) -> None:
        """Cap the memory of every slot together (the engine's parent group): past it the kernel OOM-kills
        inside the engine's runs, never elsewhere on the host."""
        if self.version is None:
            return
        if self.version == 2:
            parent = self.base / self.name
            parent.mkdir(exist_ok=True)
            (parent / "cgroup.subtree_control").write_text("+memory +pids +cpu")
            (parent / "memory.max").write_text(str(memory_bytes))
            return
        parent = CGROUP_ROOT / "memory" / self.name
        parent.mkdir(exist_ok=True)
        (parent / "memory.limit_in_bytes").write_text(str(memory_bytes))

    def oom_kills_since_last(self, slot: str) -> int:
        """Processes of `slot` the kernel's OOM killer took since this was last asked (once per run: the
        run's count). One small sysfs read, ~10 µs."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            with open(self._dirs(slot)[0] / name) as fh:
                count = next((int(line.split()[1]) for line in fh if line.startswith("oom_kill ")), 0)
        except (OSError, ValueError):
            return 0
        seen, self._oom_seen[slot] = self._oom_seen.get(slot, 0), count
        return max(0, count - seen)

    def procs_files(self, slot: str) -> list[str]:
        procs = self._procs.get(slot)
        if procs is None:
            procs = self._procs[slot] = [str(d / "cgroup.procs") for d in self._dirs(slot)]
        return procs

    def ensure_limits(self, slot: str, limits: Limits) -> None:
        if self._applied.get(slot) != limits:
            self._apply(slot, limits)
            self._applied[slot] = limits

    def _apply(self, slot: str, limits: Limits) -> None:
        quota = max(1000, int(limits.cpus * CFS_PERIOD_US))
        if self.version == 2:
            d = self._dirs(slot)[0]
            (d / "memory.max").write_text(str(limits.memory_bytes))
            (d / "pids.max").write_text(str(limits.pids))
            (d / "cpu.max").write_text(f"{quota} {CFS_PERIOD_US}")
            return
        memory, cpu, pids = self._dirs(slot)
        (memory / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
        (cpu / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
        (cpu / "cpu.cfs_quota_us").write_text(str(quota))
        (pids / "pids.max").write_text(str(limits.pids))

    def release(self, slot: str) -> None:
        """Return a slot once nothing runs in it; a slot that will not empty is abandoned, not reused."""
        if self._kill_members(slot):
            self._free.append(slot)

    def _kill_members(self, slot: str) -> bool:
        procs = self.procs_files(slot)[0]
        deadline = time.monotonic() + 2.0
        while True:
            try:
                with open(procs) as fh:
                    pids = [int(p) for p in fh.read().split()]
            except OSError:
                return False
            if not pids:
                return True
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)

    def remove_all(self) -> None:
        """Remove every slot this engine name owns, then the engine's own group (used at start, after a
        crash, and at stop). Each engine names its group after its state dir, so a group left behind is
        never reused by another state dir: it would stay on the host for good."""
        roots = [self.base / self.name] if self.version == 2 else [CGROUP_ROOT / c / self.name
                                                                     for c in V1_CONTROLLERS]
        for root in roots:
            if not root.is_dir():
                continue
            for slot in [p for p in root.iterdir() if p.is_dir()]:
                self._kill_members(slot.name)
                try:
                    slot.rmdir()
                except OSError:
                    pass
            try:
                root.rmdir()  # fails (and stays) while a slot would not empty
            except OSError:
                pass
        self._free.clear()
        self._applied.clear()
        self._slot_dirs.clear()
        self._procs.clear()
        self._oom_seen.clear()
