"""A normal user's engine enters a user namespace of its own before anything else happens (#14).

`contree-tui engine serve` run by a normal user calls `enter_rootless_namespace()` first, while the process is
still single-threaded (unshare(CLONE_NEWUSER) refuses a threaded process: before uvloop, uvicorn or any
executor). The steps, as podman's rootless mode takes them:

1. fork a child, which waits on a pipe;
2. the engine unshares CLONE_NEWUSER: it now holds every capability, in a namespace that maps no id yet;
3. the child, still in the host's namespace, runs the setuid helpers `newuidmap PID 0 UID 1 1 SUB COUNT` and
   `newgidmap PID 0 GID 1 1 SUB COUNT` on the engine (a process may not map more than its own id itself);
   shadow-utils checks each range against /etc/subuid and /etc/subgid; the child exits;
4. the engine, now uid 0 there (the user outside) with ids 1..COUNT its subordinate range, unshares a mount
   namespace and makes / recursively a slave: host unmounts propagate in, nothing the engine mounts leaks out.

Everything the engine starts (keepers, helpers, pasta) inherits the namespace; privilege.running_rootless()
answers True from then on. The pid stays the same, so the pid file and `engine stop` (a signal from the same
user) work unchanged. Cost measured here: ~6 ms (fork + two setuid helpers), once per engine start.
"""

from __future__ import annotations

import ctypes
import logging
import os
import subprocess
import threading
import time

from contree_tui.engine import privilege
from contree_tui.engine.models import EngineError
from contree_tui.engine.rootless_checks import (
    CLONE_NEWNS,
    CLONE_NEWUSER,
    RootlessIds,
    prerequisites_message,
    require_rootless_prerequisites,
    user_namespace_missing,
)

log = logging.getLogger("contree_tui.engine")

MS_REC, MS_SLAVE = 0x4000, 0x80000
MAP_TIMEOUT = 10.0  # seconds for newuidmap + newgidmap (~2 ms each measured)


def id_map_arguments(own: int, ranges: tuple[tuple[int, int], ...]) -> list[str]:
    """`0 OWN 1` then each subordinate range from inside id 1 up, consecutively (the kernel takes up to 340
    lines; /etc/subuid gives a user one or a few)."""
    args = ["0", str(own), "1"]
    inside = 1
    for first, count in ranges:
        args += [str(inside), str(first), str(count)]
        inside += count
    return args


def _map_ids(pid: int, ids: RootlessIds) -> str:
    """Run in the forked child, in the host's namespace: map the engine's ids. '' or what failed."""
    for tool, own, ranges in ((ids.newuidmap, ids.uid, ids.uid_ranges), (ids.newgidmap, ids.gid, ids.gid_ranges)):
        done = subprocess.run([tool, str(pid), *id_map_arguments(own, ranges)], capture_output=True, text=True,
                              timeout=MAP_TIMEOUT, check=False)
        if done.returncode != 0:
            return f"{os.path.basename(tool)} failed (exit {done.returncode}): {done.stderr.strip()}"
    return ""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _unshare(libc: ctypes.CDLL, flags: int) -> int:
    """0, or the errno of a refused unshare."""
    return 0 if libc.unshare(flags) == 0 else ctypes.get_errno()


def _enter(ids: RootlessIds) -> None:
    libc = _libc()
    engine = os.getpid()
    go_read, go_write = os.pipe()
    err_read, err_write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the mapping child; it reports on err_write and exits
        os.close(go_write)
        os.close(err_read)
        status = 1
        try:
            if os.read(go_read, 1) == b"1":  # the engine unshared (EOF: it failed, nothing to map)
                failure = _map_ids(engine, ids)
                os.write(err_write, failure.encode()[:4000])
                status = 1 if failure else 0
        except BaseException as exc:  # noqa: BLE001 - anything, reported, never a second engine
            os.write(err_write, f"mapping ids failed: {exc}".encode()[:4000])
        os._exit(status)
    os.close(go_read)
    os.close(err_write)
    failed = _unshare(libc, CLONE_NEWUSER)
    if not failed:
        os.write(go_write, b"1")
    os.close(go_write)
    with os.fdopen(err_read, "rb") as fh:
        child_says = fh.read().decode(errors="replace")
    _, status = os.waitpid(child, 0)
    if failed:
        missing = user_namespace_missing()
        reason = prerequisites_message([missing]) if missing else f"unshare(CLONE_NEWUSER): {os.strerror(failed)}"
        raise EngineError(f"cannot enter a user namespace: {reason}", status=503)
    if os.waitstatus_to_exitcode(status) != 0 or os.geteuid() != 0:
        raise EngineError(f"cannot map this user's ids into the engine's user namespace: "
                          f"{child_says or 'the mapping helper exited ' + str(status)}", status=503)
    os.setresgid(0, 0, 0)  # already 0 through the map; also makes the saved ids 0 explicitly
    os.setresuid(0, 0, 0)
    failed = _unshare(libc, CLONE_NEWNS)
    if failed:
        raise EngineError(f"cannot make a mount namespace in the engine's user namespace: {os.strerror(failed)}",
                          status=503)
    if libc.mount(None, b"/", None, MS_REC | MS_SLAVE, None) != 0:
        raise EngineError(f"cannot make / a slave mount: {os.strerror(ctypes.get_errno())}", status=503)


def enter_rootless_namespace() -> float | None:
    """For a normal user (euid != 0): check every prerequisite, then enter. Returns the entry's cost in
    seconds, or None when there was nothing to do (root, or already uid 0 of a user namespace)."""
    if os.geteuid() == 0:
        return None
    ids = require_rootless_prerequisites()
    if threading.active_count() != 1:  # a programming error, not the user's: the kernel would say EINVAL
        raise EngineError("the rootless entry must run before any thread starts", status=500)
    started = time.perf_counter()
    _enter(ids)
    privilege.running_rootless.cache_clear()
    return time.perf_counter() - started
