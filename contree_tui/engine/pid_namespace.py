"""A rootless engine's own pid namespace (#14): a building block for the rootless entry.

Every keeper and helper is born pid 1 of a new pid namespace (syscalls.fork_pid1, launch.Keeper.spawn_native,
network.py's guard): unshare(CLONE_NEWPID), fork, then setns back to the caller's own pid namespace. That setns
needs CAP_SYS_ADMIN in the user namespace owning the caller's pid namespace; rootless the caller's is the host's
(owned by the initial user namespace): EPERM, and no sandbox could start (userns.require_own_pid_namespace says
so at Engine.open). So the entry, after its user and mount namespaces, calls `enter_own_pid_namespace()`:

    relay (the process the user started, its pid unchanged) ──fork──▶ the engine: pid 1 of a new pid
    namespace of the engine's user namespace, with a /proc of its own (pids from fork are looked up there)

The relay only forwards SIGTERM, SIGINT, SIGHUP and SIGQUIT to the engine and exits with its status; the engine
dies with it (PDEATHSIG). Pid files and `engine stop` keep naming the relay (the returned pid). As pid 1 the
engine receives only the signals it has handlers for, and reaps the processes orphaned in its namespace.
Cost: one fork of the interpreter before any thread starts, ~1-2 ms once per engine start.
"""

from __future__ import annotations

import os
import signal
from typing import NoReturn

from contree_tui.engine.sandbox import syscalls as sc

RELAYED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def enter_own_pid_namespace() -> int:
    """Continue as pid 1 of a new pid namespace with its /proc; returns the relay's pid (for pid files). Call
    single-threaded (a fork), with CAP_SYS_ADMIN in the current user and mount namespaces."""
    relay = os.getpid()
    ready_r, ready_w = os.pipe()
    sc.unshare(sc.CLONE_NEWPID)
    child = os.fork()
    if child == 0:
        os.close(ready_r)
        try:
            sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
            sc.mount("proc", "/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
            os.write(ready_w, b"ok")
        except BaseException as exc:  # noqa: BLE001 - told to the relay, which exits with it
            os.write(ready_w, str(exc).encode()[:1000] or b"failed")
            os._exit(1)
        os.close(ready_w)
        return relay
    os.close(ready_w)
    answer = os.read(ready_r, 1000)
    os.close(ready_r)
    if answer != b"ok":
        os.waitpid(child, 0)
        raise OSError(f"cannot give the engine a pid namespace of its own: {answer.decode(errors='replace')}")
    _relay(child)


def _relay(child: int) -> NoReturn:
    for signum in RELAYED:
        signal.signal(signum, lambda number, _frame: os.kill(child, number))
    try:
        _, status = os.waitpid(child, 0)  # retried after each relayed signal (PEP 475)
    except ChildProcessError:
        os._exit(1)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
