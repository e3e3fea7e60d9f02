"""The engine's settings (EngineConfig): limits, timeouts, admission, disk floors, sandbox ids."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from contree_tui.engine.models import DEFAULT_MAX_LAYER_BYTES
from contree_tui.engine.rootfs_import import DEFAULT_IMPORT_TIMEOUT
from contree_tui.engine.sandbox.limits import Limits
from contree_tui.engine.sandbox.userns import SandboxIds

# Overlay refuses more than 500 lower layers. Squash long before that: at depth 50 a full `find` was only
# ~25% slower than at depth 0, so 64 costs little and leaves room for the base and scaffold layers.
SQUASH_AT = 64


@dataclass(frozen=True)
class EngineConfig:
    limits: Limits = field(default_factory=Limits)
    default_timeout: float = 600.0
    max_timeout: float = 3600.0
    squash_at: int = SQUASH_AT
    cgroups: bool = True  # False: rlimits and a pids cap, as rootless without delegation (sandbox/limit_plan.py)
    # The largest resources_limits.max_layer_bytes a request may ask for (the spec's default, 12 GiB).
    max_layer_bytes: int = DEFAULT_MAX_LAYER_BYTES
    max_upload_bytes: int = 4 << 30  # one POST /v1/files body (streamed to disk)
    # A rootfs tarball's extraction (a confined helper, rootfs_import.py) is killed after this many seconds;
    # its files together, and each one, may hold at most max_layer_bytes.
    import_timeout: float = DEFAULT_IMPORT_TIMEOUT
    # Below this much free space on the state dir's filesystem, spawns and uploads are refused (507) and
    # running sandboxes that write are stopped: sqlite needs room for the events and status rows.
    min_free_bytes: int = 1 << 30
    # Admission (engine/admission.py): runs at once, and the memory all runs together may use (None: 3/4
    # of the host's MemTotal, also the kernel's hard limit on the engine's parent cgroup). Each run
    # reserves run_memory_reserve of it (None: a quarter of the per-run cap, 1 GiB by default: most runs
    # use far less than their cap, and reserving the whole 4 GiB would admit only 4 runs on a 23 GB host).
    max_concurrent_runs: int = 64
    memory_budget: int | None = None
    run_memory_reserve: int | None = None
    # Sandbox uid/gid i is host BASE+i (userns.py); None: sandboxes share the host's ids (measurements only).
    # Rootless: the engine's own ids 0..min(65535, its map's size - 1), whatever this says.
    sandbox_ids: SandboxIds | None = field(default_factory=SandboxIds.for_engine)

    def total_memory_budget(self) -> int:
        return self.memory_budget if self.memory_budget is not None else host_memory() * 3 // 4

    def memory_reserve(self) -> int:
        return self.run_memory_reserve if self.run_memory_reserve is not None else self.limits.memory_bytes // 4


def host_memory() -> int:
    """MemTotal in bytes."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
