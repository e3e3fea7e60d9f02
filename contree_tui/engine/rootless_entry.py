"""A normal user's engine enters a user namespace of its own before anything else happens (#14).

`contree-tui engine serve` run by a normal user calls `enter_rootless_namespace()` first, while the process is
still single-threaded (unshare(CLONE_NEWUSER) refuses a threaded process: before uvloop, uvicorn or any
executor). The steps, as podman's rootless mode takes them:

1. start a child (a shell), which waits for a word on its stdin;
2. the engine unshares CLONE_NEWUSER: it now holds every capability, in a namespace that maps no id yet;
3. the child, still in the host's namespace, runs the setuid helpers `newuidmap PID 0 UID 1 1 SUB COUNT` and
   `newgidmap PID 0 GID 1 1 SUB COUNT` on the engine (a process may not map more than its own id itself);
   shadow-utils checks each range against /etc/subuid and /etc/subgid; the child exits, the engine reaps it;
4. the engine, now uid 0 there (the user outside) with ids 1..COUNT its subordinate range, unshares a mount
   namespace and makes / recursively a slave (host unmounts propagate in, nothing the engine mounts leaks out);
5. pid_namespace.enter_own_pid_namespace(): a fork into a new pid namespace, whose pid 1 (with its /proc) goes
   on as the engine, and which keepers' setns back to it needs; the process that was started stays outside as
   its relay (signals passed on, its exit status the engine's).

Everything the engine starts (keepers, helpers, pasta) inherits the namespace; privilege.running_rootless()
answers True from then on. The pid file holds the relay's pid, the one that was started: `engine stop` (a signal
from the same user) is passed on; a kill -9 of it kills the engine (PDEATHSIG) and so every sandbox (the kernel
ends a pid namespace with its pid 1).
Cost, once per engine start (bench/bench_rootless_entry.py): 10-16 ms median on a loaded 2-core VM, 1.2-1.7x
util-linux `unshare --map-auto --map-root-user --mount --pid --fork --mount-proc` (which forks a C program where
this forks the interpreter); under 1% of a cold start.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import subprocess
import threading
import time

from contree_tui.engine import privilege
from contree_tui.engine.models import EngineError
from contree_tui.engine.pid_namespace import enter_own_pid_namespace
from contree_tui.engine.rootless_checks import (
    CLONE_NEWNS,
    CLONE_NEWUSER,
    RootlessIds,
    prerequisites_message,
    require_rootless_prerequisites,
    user_namespace_missing,
)

MS_REC, MS_SLAVE = 0x4000, 0x80000
_relay_pid: int | None = None  # set in the engine once it is pid 1 of its own pid namespace
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


def mapping_script(pid: int, ids: RootlessIds) -> str:
    """What the helper shell runs once the engine has unshared (a line on its stdin; EOF: it failed, map
    nothing): newuidmap and newgidmap at once (they write different files), exit 0 only if both mapped."""
    uid = shlex.join([ids.newuidmap, str(pid), *id_map_arguments(ids.uid, ids.uid_ranges)])
    gid = shlex.join([ids.newgidmap, str(pid), *id_map_arguments(ids.gid, ids.gid_ranges)])
    return f"read -r go || exit 3\n{uid} & u=$!\n{gid}; g=$?\nwait $u && exit $g"


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _unshare(libc: ctypes.CDLL, flags: int) -> int:
    """0, or the errno of a refused unshare."""
    return 0 if libc.unshare(flags) == 0 else ctypes.get_errno()


def _enter(ids: RootlessIds) -> None:
    libc = _libc()
    # The mapping helpers must run in the host's namespace: a shell started BEFORE the unshare waits for the
    # word (posix_spawn/vfork: ~1 ms, where forking this Python costs ~2 ms more; measured in
    # bench/bench_rootless_entry.py).
    helper = subprocess.Popen(["/bin/sh", "-c", mapping_script(os.getpid(), ids)], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, close_fds=True)
    assert helper.stdin is not None and helper.stderr is not None
    failed = _unshare(libc, CLONE_NEWUSER)
    try:
        if not failed:
            helper.stdin.write(b"go\n")
        helper.stdin.close()
    except BrokenPipeError:  # the shell is gone: its status says why
        pass
    try:
        said = helper.stderr.read(8000).decode(errors="replace").strip()
        status = helper.wait(timeout=MAP_TIMEOUT)
    except subprocess.TimeoutExpired:
        helper.kill()
        helper.wait()
        said, status = f"newuidmap/newgidmap did not finish within {MAP_TIMEOUT:g} s", -1
    finally:
        helper.stderr.close()
    if failed:
        missing = user_namespace_missing()
        reason = prerequisites_message([missing]) if missing else f"unshare(CLONE_NEWUSER): {os.strerror(failed)}"
        raise EngineError(f"cannot enter a user namespace: {reason}", status=503)
    if status != 0 or os.geteuid() != 0:
        raise EngineError("cannot map this user's ids into the engine's user namespace: "
                          f"{said or 'newuidmap/newgidmap exited ' + str(status)}", status=503)
    os.setresgid(0, 0, 0)  # already 0 through the map; also makes the saved ids 0 explicitly
    os.setresuid(0, 0, 0)
    failed = _unshare(libc, CLONE_NEWNS)
    if failed:
        raise EngineError(f"cannot make a mount namespace in the engine's user namespace: {os.strerror(failed)}",
                          status=503)
    if libc.mount(None, b"/", None, MS_REC | MS_SLAVE, None) != 0:
        raise EngineError(f"cannot make / a slave mount: {os.strerror(ctypes.get_errno())}", status=503)
    global _relay_pid
    try:  # returns in the engine, pid 1 of its own pid namespace; the relay outside never returns
        _relay_pid = enter_own_pid_namespace()
    except OSError as exc:
        raise EngineError(str(exc), status=503) from None
    # pid 1 ignores a signal it has no handler for: SIGTERM and SIGHUP end it as they end a root engine (uvicorn's
    # graceful SIGTERM handler replaces this one while it serves)
    for ending in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(ending, _end_as_by_default)


def _end_as_by_default(signum: int, _frame: object) -> None:
    os._exit(128 + signum)


def engine_host_pid() -> int:
    """The pid the pid file holds (for `engine stop` and `engine status`): a rootless engine's relay, the process
    that was started, which passes signals on (inside its pid namespace the engine itself is pid 1)."""
    return _relay_pid or os.getpid()


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
