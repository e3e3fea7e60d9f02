"""Which mechanism enforces each run limit, decided once when the engine starts (#14).

- root, cgroups usable (v1 here, v2 where the host is unified): memory, CPU share and pids per run, as
  before (limits.CgroupPool); the per-process rlimits of LimitPlan.rlimits on top.
- rootless, with a delegated cgroup v2 subtree (systemd's user@.service gives its units one; `systemd-run
  --user --scope` puts a command in such a unit): the same per-run cgroups, under the engine's own group.
- otherwise (rootless without delegation, or root with `cgroups=False`): rlimits, set on every run's
  processes, plus a pids cap:
  - memory: RLIMIT_AS, per process (a 300 MB allocation under 64 MiB fails with ENOMEM, the program says
    "out of memory"); the engine's total budget is admission's reservation only, not enforced by a kernel.
  - CPU: RLIMIT_CPU, CPU *time* per process (SIGXCPU when used up), not a share: `cpus` CPUs for the longest
    timeout allowed, so it only stops a process that outran a run's wall clock on several threads.
  - pids: the pid_max of the run's own pid namespace (Linux >= 6.14 made pid_max per pid namespace; pid 1
    writes it while it still has CAP_SYS_ADMIN over that namespace, in root and rootless mode alike). Per
    run, and a run cannot raise it (its root holds no capability over the namespace that owns it).
    Measured: pid_max 400 in a fresh namespace stopped `sleep &` loops at "Cannot fork", as root and as a
    normal user, with the host's 32768 unchanged. Allocation restarts at 300 (RESERVED_PIDS) once the
    counter passed it, so pid_max = 300 + pids allows between `pids` and `pids` + 299 processes at once.
  - and RLIMIT_NPROC as a backstop for the host, because it is not per run: the kernel counts a uid's
    tasks per user namespace (ucounts, Linux >= 5.14), and every sandbox of an engine shares one user
    namespace, so all runs as uid 0 share one count. Measured as a normal user (one user namespace, uid 0,
    two pid namespaces, RLIMIT_NPROC 100): the first "sandbox" forked 96 sleepers, the second then forked 0.
    So it is set to 16 runs' worth of pids (16 x 1024 by default), never above half the host's pid_max
    (32768 here): enough for 16 concurrent normal runs, and a fork bomb — capped per run by pid_max where
    the kernel has it — cannot take every pid of the host.
- disk, in every mode: the writable layer's cap (max_layer_bytes: a tmpfs size for disposable runs, a
  watched upper for the others, engine/layer_cap.py) and RLIMIT_FSIZE for one file.
"""

from __future__ import annotations

import os
import resource
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contree_tui.engine import privilege
from contree_tui.engine.sandbox.limits import CGROUP_ROOT, Limits, detect_cgroup_version

V2_CONTROLLERS = ("memory", "pids", "cpu")
RESERVED_PIDS = 300  # the kernel's: pid allocation wraps around to 300, not 1 (kernel/pid.c)
PID_MAX_PER_NAMESPACE = (6, 14)  # the first Linux whose pid_max is per pid namespace
NPROC_RUNS = 16  # concurrent normal runs the shared RLIMIT_NPROC must leave room for


@dataclass(frozen=True)
class LimitPlan:
    """How this engine enforces Limits; `describe` is what `engine status` prints."""

    rootless: bool
    cgroup_version: int | None  # 1 or 2: per-run groups (CgroupPool); None: rlimits only
    cgroup_base: Path = CGROUP_ROOT  # the group that holds the engine's own (v2: a delegated one rootless)
    cgroup_note: str = ""  # why there are no cgroups (empty when there are)
    pid_namespace_max: bool = False  # the run's pid namespace's pid_max caps its pids (Linux >= 6.14)
    nproc_shared: int | None = None  # RLIMIT_NPROC, shared by all sandboxes of a uid
    cpu_seconds: int = 0  # RLIMIT_CPU without cgroups

    @property
    def cgroups(self) -> bool:
        return self.cgroup_version is not None

    def rlimits(self, limits: Limits, max_file_bytes: int) -> dict[int, int]:
        """The rlimits of a run's processes (pid 1 sets them; RLIMIT_AS only on the command, see launch)."""
        values = {resource.RLIMIT_NOFILE: limits.open_files, resource.RLIMIT_FSIZE: max_file_bytes,
                  resource.RLIMIT_CORE: 0}
        if not self.cgroups:
            values[resource.RLIMIT_AS] = limits.memory_bytes
            values[resource.RLIMIT_CPU] = self.cpu_seconds
            if self.nproc_shared is not None:
                values[resource.RLIMIT_NPROC] = self.nproc_shared
        return values

    def cpu_time_used_up(self, exit: dict[str, Any] | None, timed_out: bool) -> bool:
        """The command was stopped by RLIMIT_CPU: SIGXCPU at the limit (pid 1 sets the hard limit a second
        above the soft one), or the SIGKILL that follows when SIGXCPU is caught, not the timeout's, once its
        user + system time neared the limit (the kernel counts exact runtime, rusage reports tick samples:
        a spinner killed at 2 s reported 1.88 s, hence 90%)."""
        if self.cgroups or timed_out or not exit:
            return False
        if exit.get("signal") == signal.SIGXCPU:
            return True
        if exit.get("signal") != signal.SIGKILL:
            return False
        usage = exit.get("resources") or {}
        used_us = usage.get("user_time_us", 0) + usage.get("sys_time_us", 0)
        return used_us >= self.cpu_seconds * 900_000

    def pid_max(self, limits: Limits) -> int:
        """The pid_max pid 1 writes for its namespace (0: none; cgroups cap pids, or the kernel cannot)."""
        return RESERVED_PIDS + limits.pids if not self.cgroups and self.pid_namespace_max else 0

    def describe(self, limits: Limits, memory_budget: int | None = None) -> list[str]:
        """One line per limit: its value, the mechanism that enforces it and what it applies to
        (`memory_budget`: admission's total for all runs, a kernel limit too where there are cgroups)."""
        lines = [f"open files {limits.open_files} (RLIMIT_NOFILE, per process)",
                 "file size: the run's max_layer_bytes (RLIMIT_FSIZE, per file)",
                 "disk: the run's max_layer_bytes (tmpfs size if disposable, else a watched upper), per run"]
        budget = f"{_size(memory_budget)} " if memory_budget else ""
        if self.cgroups:
            how = f"cgroup v{self.cgroup_version}" + (", delegated" if self.rootless else "")
            return [f"memory {_size(limits.memory_bytes)} ({how}, per run; all runs together {budget}({how}))",
                    f"cpu {limits.cpus:g} ({how}, a share of CPU time, per run)",
                    f"pids {limits.pids} ({how}, per run)", *lines]
        if self.pid_namespace_max:
            pids = f"pids {limits.pids} (pid_max of the run's pid namespace, per run)"
        else:
            since = ".".join(map(str, PID_MAX_PER_NAMESPACE))
            pids = f"pids: no per-run cap (needs Linux >= {since}: pid_max per pid namespace)"
        if self.nproc_shared is not None:
            pids += f"; {self.nproc_shared} (RLIMIT_NPROC, shared by all sandboxes of a uid)"
        total = f"; all runs together {budget}(reserved at admission, not a kernel limit)" if budget else ""
        return [f"memory {_size(limits.memory_bytes)} (RLIMIT_AS, address space per process{total})",
                f"cpu time {self.cpu_seconds} s (RLIMIT_CPU, per process: time, not a share)",
                pids, *lines]

    def mode_line(self) -> str:
        """`root` or `rootless as uid N with ids A..B`, for `engine status`."""
        if not self.rootless:
            return "root"
        lines = privilege.uid_map()
        uid = next((outside for inside, outside, _ in lines if inside == 0), None)
        ranges = ", ".join(f"{outside}..{outside + count - 1}" if count > 1 else str(outside)
                           for inside, outside, count in sorted(lines))
        return f"rootless as uid {uid} with ids {ranges} ({privilege.mapped_id_count()} mapped)"

    def to_json(self, limits: Limits, memory_budget: int | None = None) -> dict[str, object]:
        return {"mode": "rootless" if self.rootless else "root", "mode_text": self.mode_line(),
                "cgroups": f"v{self.cgroup_version}" if self.cgroups else None, "cgroup_note": self.cgroup_note,
                "limits": self.describe(limits, memory_budget)}


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.3g} {unit}"
    return f"{n} bytes"


def plan_limits(limits: Limits, *, cgroups: bool, max_timeout: float, engine_group: str) -> LimitPlan:
    """The plan for this engine (once, at start). `engine_group` names the engine's own cgroup."""
    rootless = privilege.running_rootless()
    version: int | None = None
    base, note = CGROUP_ROOT, ""
    if not cgroups:
        note = "cgroups disabled by the engine's configuration"
    elif not rootless:
        version = detect_cgroup_version()
        note = "" if version else "no usable cgroup controllers (memory, cpu, pids)"
    else:
        delegated, note = delegated_v2_group()
        if delegated is not None:
            try:
                base = enter_delegated(delegated, engine_group)
                version = 2
            except OSError as exc:
                note = f"the delegated cgroup {delegated} could not be set up ({exc.strerror or exc})"
    per_ns = version is None and pid_max_is_per_namespace()
    return LimitPlan(
        rootless=rootless, cgroup_version=version, cgroup_base=base, cgroup_note=note,
        pid_namespace_max=per_ns,
        nproc_shared=None if version else shared_nproc(limits.pids, host_pid_max()),
        cpu_seconds=limits.cpu_seconds or max(1, int(limits.cpus * max_timeout)))


def shared_nproc(pids: int, host_pids: int) -> int:
    return max(pids, min(pids * NPROC_RUNS, host_pids // 2))


def host_pid_max() -> int:
    try:
        with open("/proc/sys/kernel/pid_max") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return 32768  # the kernel's default


# -- cgroup v2 delegation -------------------------------------------------------------------------------

def own_v2_path(proc_self_cgroup: str) -> str | None:
    """The unified hierarchy's path in /proc/self/cgroup's text (its `0::PATH` line), None without one."""
    for line in proc_self_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            return path
    return None


def mount_type(mountinfo: str, mount_point: str) -> str | None:
    """The filesystem type mounted at `mount_point` (the last such mount) in /proc/self/mountinfo's text."""
    found = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == mount_point and " - " in line:
            found = line.split(" - ", 1)[1].split()[0]
    return found


def delegated_v2_group(root: Path = CGROUP_ROOT, proc: str = "/proc/self",
                       controllers: tuple[str, ...] = V2_CONTROLLERS) -> tuple[Path | None, str]:
    """The engine's own cgroup v2 group when `controllers` can be given to runs under it, else None and why
    not (shown by `engine status`)."""
    try:
        mountinfo = Path(f"{proc}/mountinfo").read_text()
        own = own_v2_path(Path(f"{proc}/cgroup").read_text())
    except OSError as exc:
        return None, f"cannot read {proc}'s cgroup ({exc.strerror})"
    if mount_type(mountinfo, str(root)) != "cgroup2":
        return None, f"{root} is not a unified cgroup v2 hierarchy (cgroup v1 or hybrid needs root)"
    if own is None:
        return None, "this process is in no cgroup v2 group"
    group = root / own.lstrip("/")
    try:
        available = set((group / "cgroup.controllers").read_text().split())
    except OSError as exc:
        return None, f"cannot read {group}/cgroup.controllers ({exc.strerror})"
    missing = [c for c in controllers if c not in available]
    if missing:
        return None, f"controllers {', '.join(missing)} are not available in {group}"
    if not all(os.access(p, os.W_OK) for p in (group, group / "cgroup.subtree_control", group / "cgroup.procs")):
        return None, (f"{group} is not delegated to this user (start the engine in a delegated unit, e.g. "
                      "`systemd-run --user --scope -p Delegate=yes contree-tui engine serve`)")
    return group, ""


def enter_delegated(group: Path, name: str, controllers: tuple[str, ...] = V2_CONTROLLERS) -> Path:
    """Move this process into a leaf of `group` (a group whose subtree has controllers may hold no
    processes) and enable memory, pids and cpu for its children; the engine's runs go under `name` there
    (CgroupPool with base = `group`). Raises OSError when the kernel refuses (other processes in `group`)."""
    leaf = group / f"{name}-engine"
    leaf.mkdir(exist_ok=True)
    (leaf / "cgroup.procs").write_text(str(os.getpid()))
    if controllers:
        (group / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in controllers))
    return group


# -- pid_max per pid namespace ----------------------------------------------------------------------------

def pid_max_is_per_namespace() -> bool:
    """Linux >= 6.14, where writing pid_max in a child pid namespace leaves the host's alone. Decided by
    the version, never by a trial write: on an older kernel a root engine's write would change the host's."""
    release = os.uname().release.split("-")[0].split(".")
    try:
        version = (int(release[0]), int(release[1]))
    except (IndexError, ValueError):
        return False
    return version >= PID_MAX_PER_NAMESPACE
