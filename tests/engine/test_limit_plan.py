"""The limits plan (#14): the detectors on this host's real /proc and cgroup mounts, and what `engine status`
says is in force."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from contree_tui.client.embedded import ensure_engine
from contree_tui.client.engine_info import describe_engine, engine_info
from contree_tui.engine import privilege
from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.http import create_app
from contree_tui.engine.sandbox.limit_plan import (
    delegated_v2_group,
    mount_type,
    own_v2_path,
    plan_limits,
    shared_nproc,
)
from contree_tui.engine.sandbox.limits import CGROUP_ROOT, Limits, detect_cgroup_version
from tests.api.conftest import serve, stop

OpenEngine = Callable[..., Awaitable[Engine]]
CLI = [sys.executable, "-m", "contree_tui.cli"]
# A terminal's shell on a Debian 12 desktop with systemd (unified hierarchy), for the parser: this VM has no
# systemd and its own line is `0::/`.
DESKTOP_CGROUP = ("0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/"
                  "vte-spawn-2f1c.scope\n")


def test_own_v2_path_reads_the_unified_line_of_proc_self_cgroup() -> None:
    real = Path("/proc/self/cgroup").read_text()
    unified = [line for line in real.splitlines() if line.startswith("0::")]
    assert own_v2_path(real) == (unified[0][3:] if unified else None)
    assert own_v2_path(DESKTOP_CGROUP).endswith("/vte-spawn-2f1c.scope")
    assert own_v2_path("4:memory:/x\n3:pids:/\n") is None  # v1 lines only: no unified hierarchy


def test_mount_type_tells_this_hosts_hybrid_layout() -> None:
    mountinfo = Path("/proc/self/mountinfo").read_text()
    if mount_type(mountinfo, "/sys/fs/cgroup") == "cgroup2":
        pytest.skip("this host has a unified cgroup hierarchy; the hybrid case is this VM's")
    assert mount_type(mountinfo, "/sys/fs/cgroup") == "tmpfs"
    assert mount_type(mountinfo, "/sys/fs/cgroup/unified") == "cgroup2"


def test_a_hybrid_host_gives_no_v2_delegation_and_says_why() -> None:
    if mount_type(Path("/proc/self/mountinfo").read_text(), "/sys/fs/cgroup") == "cgroup2":
        pytest.skip("a unified host: delegation depends on its systemd, tests/rootless covers it")
    group, why = delegated_v2_group()
    assert group is None and "not a unified cgroup v2 hierarchy" in why
    # the real cgroup2 mount of this VM holds only hugetlb: no memory, pids or cpu to give runs
    controllers = Path("/sys/fs/cgroup/unified/cgroup.controllers").read_text().split()
    group, why = delegated_v2_group(Path("/sys/fs/cgroup/unified"))
    assert group is None
    assert all(c in why for c in ("memory", "pids", "cpu") if c not in controllers), why


def test_root_keeps_its_cgroups_and_cgroups_off_takes_the_rlimit_path() -> None:
    if privilege.running_rootless():
        pytest.skip("needs root mode")
    root = plan_limits(Limits(), cgroups=True, max_timeout=3600, engine_group="x")
    assert root.cgroup_version == detect_cgroup_version() and root.cgroup_base == CGROUP_ROOT
    assert not root.rootless and root.nproc_shared is None and root.pid_max(Limits()) == 0
    off = plan_limits(Limits(pids=100, cpus=2), cgroups=False, max_timeout=3600, engine_group="x")
    assert off.cgroup_version is None and "disabled" in off.cgroup_note
    assert off.cpu_seconds == 7200  # 2 CPUs for the longest timeout
    assert off.nproc_shared == shared_nproc(100, int(Path("/proc/sys/kernel/pid_max").read_text()))
    assert off.pid_max(Limits(pids=100)) == (400 if off.pid_namespace_max else 0)


def test_the_shared_nproc_leaves_room_for_16_runs_and_half_the_host() -> None:
    assert shared_nproc(1024, 32768) == 16384
    assert shared_nproc(1024, 4194304) == 16384
    assert shared_nproc(64, 32768) == 1024
    assert shared_nproc(1024, 4096) == 2048  # half the host's pids, however many runs that is
    assert shared_nproc(4096, 4096) == 4096  # never below one run's own cap


@pytest.fixture
async def socket_of(open_engine: OpenEngine) -> AsyncIterator[Callable[[EngineConfig], Awaitable[Path]]]:
    servers = []
    directory = tempfile.mkdtemp(prefix="ctplan-")

    async def start(config: EngineConfig) -> Path:
        engine = await open_engine(config, name=f"state{len(servers)}")
        path = Path(directory) / f"api{len(servers)}.sock"
        servers.append(await serve(create_app(engine), uds=str(path)))
        return path

    try:
        yield start
    finally:
        for server, task in servers:
            await stop(server, task)
        shutil.rmtree(directory, ignore_errors=True)


async def test_status_says_which_limits_are_in_force_without_cgroups(socket_of: Callable[..., Awaitable[Path]]) -> None:
    info = await engine_info(await socket_of(EngineConfig(cgroups=False, limits=Limits(memory_bytes=2 << 30))))
    assert info is not None and info["mode"] == "root" and info["cgroups"] is None
    text = "\n".join(describe_engine(info))
    assert "mode: root" in text and "cgroups: none (cgroups disabled by the engine's configuration)" in text
    assert "memory 2 GiB (RLIMIT_AS, address space per process" in text
    assert "cpu time " in text and "(RLIMIT_CPU, per process: time, not a share)" in text
    assert "(RLIMIT_NPROC, shared by all sandboxes of a uid)" in text
    assert "pid_max of the run's pid namespace, per run" in text or "no per-run cap" in text


async def test_engine_status_names_the_mode_and_the_cgroup_limits(tmp_path: Path) -> None:
    state = tmp_path / "engine"
    await ensure_engine(state)
    try:
        done = subprocess.run([*CLI, "engine", "status", "--state-dir", str(state)], capture_output=True, text=True,
                              timeout=60)
    finally:
        subprocess.run([*CLI, "engine", "stop", "--state-dir", str(state)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("engine running: pid ") and lines[1] == "mode: root"
    version = detect_cgroup_version()
    if version is None:
        assert lines[2].startswith("cgroups: none (")
        return
    assert lines[2] == f"cgroups: v{version}"
    assert any(line.startswith(f"  memory 4 GiB (cgroup v{version}, per run; all runs together ") for line in lines)
    assert f"  pids 1024 (cgroup v{version}, per run)" in lines
