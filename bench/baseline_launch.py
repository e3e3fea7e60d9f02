"""The baseline the sandbox benchmarks compare against: the least a pivot_root sandbox can do to run a command.

fork → unshare(mount, pid, uts, ipc) → make / rprivate → overlay of the given lowers through the engine's
own `syscalls.overlay_mount` → fork pid 1 → mount /proc → pivot_root(".", ".") + detach the old root → exec.
No /dev, no cgroups, no pipes, no capability drop, no event log, no database: what is left is the kernel's
cost (namespaces, overlay mount, process creation) plus a Python fork, so engine/bare is the engine's own
overhead. Like /work/shared/probes/sandbox.py, minus /dev and netns (the engine's default run has network).

Each launch gets a fresh upper/work/merged dir, created before and removed after the run, because the engine
does the same for every run (it is part of what `engine.run` costs).
"""

from __future__ import annotations

import os
import shutil

from contree_tui.engine.sandbox import syscalls as sc

ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}


def _pid1(merged: str, argv: list[str]) -> None:  # pragma: no cover - runs in the forked child
    sc.mount("proc", f"{merged}/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    os.chdir(merged)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
    os.execve(argv[0], argv, ENV)


def _outer(lowers: list[str], upper: str, work: str, merged: str, argv: list[str]) -> None:  # pragma: no cover
    code = 126
    try:
        sc.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWPID | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC)
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        sc.overlay_mount(lowers, upper, work, merged)
        pid = os.fork()
        if pid == 0:
            try:
                _pid1(merged, argv)
            except BaseException as exc:  # noqa: BLE001 - nothing may escape a fork
                os.write(2, f"bare launch: {exc}\n".encode())
            os._exit(127)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status) & 0xFF
    except BaseException as exc:  # noqa: BLE001
        os.write(2, f"bare launch: {exc}\n".encode())
    os._exit(code)


def bare_launch(lowers: list[str], run_dir: str, argv: list[str] | None = None) -> int:
    """Run `argv` (default /bin/true) in a fresh sandbox over `lowers` (topmost first); return its exit code.

    `lowers` must provide a /proc directory (the engine's scaffold layer does). `run_dir` must not exist.
    """
    argv = argv or ["/bin/true"]
    upper, work, merged = f"{run_dir}/upper", f"{run_dir}/work", f"{run_dir}/merged"
    for path in (upper, work, merged):
        os.makedirs(path)
    try:
        pid = os.fork()
        if pid == 0:
            _outer(lowers, upper, work, merged, argv)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    import asyncio
    import tempfile
    import time

    from contree_tui.engine.engine import Engine, EngineConfig

    async def _demo() -> None:
        with tempfile.TemporaryDirectory(prefix="contree-bench-") as tmp:
            engine = await Engine.open(f"{tmp}/state", EngineConfig())
            try:
                image = await engine.ensure_busybox()
                lowers = engine.lowers_for(image)
                started = time.perf_counter()
                code = bare_launch(lowers, f"{tmp}/run")
                print(f"bare launch of /bin/true: exit {code}, {(time.perf_counter() - started) * 1000:.2f} ms")
            finally:
                await engine.close()

    asyncio.run(_demo())
