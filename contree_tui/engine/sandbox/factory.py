"""The keeper factory: a small, single-threaded Python process that forks sandbox keepers for the engine.

Forking the engine itself cost ~2.8 ms of its event loop per run (page tables of a large, possibly
multi-threaded process), which capped throughput. This process is a fresh interpreter that imports only the
launcher, so its forks are cheap, happen on the other core, and never copy engine state (sqlite handles,
sockets, threads). Protocol on one SOCK_SEQPACKET socket:

    engine → factory   {"id": N, "cgroup_procs": [...]}          start an idle keeper into those cgroups
    factory → engine   {"id": N, "pid": P, "native": B, "net": B} + fds [keeper socket, pidfd]
                       (or {"id": N, "error": "..."})

With a built native keeper (argv[2], see native.py) keepers are keeper.c started by posix_spawn; without
one they are forks of this process.

The engine then talks to the keeper directly and watches its pidfd; the factory only reaps. The factory dies
with the engine (PDEATHSIG), and idle keepers die with the factory.

Every keeper is born in a network namespace of its own, a slot lent by network.NetworkSlots with a pasta
serving it ("net": true), or, without pasta, in ours ("net": false: the engine refuses it networking runs).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys

from contree_tui.engine.sandbox import syscalls as sc
from contree_tui.engine.sandbox.launch import Keeper, seccomp_program
from contree_tui.engine.sandbox.network import IDLE_SLOT_SECONDS, NetworkSlots, pasta_binary
from contree_tui.engine.sandbox.userns import ENV_NAME, SandboxUsers

_slots: NetworkSlots | None = None
_users: SandboxUsers | None = None  # the sandbox users' namespaces (userns.py), given to every keeper


def _reap(_signum: int, _frame: object) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if _slots is not None:
            _slots.reaped(pid)  # a keeper's slot is free again once the keeper (its pid 1) is gone


def _network_slots() -> NetworkSlots | None:
    """The slots, made now if pasta can run now: /dev/net/tun may have been made usable since we started (the
    engine's refusal says `chmod 0666 /dev/net/tun`), and then this keeper gets a network without a restart.
    While there is none, each keeper start costs the check: 1.6 us with /dev/net/tun unusable, ~17 more for the
    PATH lookup where pasta is not installed (a keeper start is ~1 ms)."""
    global _slots
    if _slots is None:
        pasta = pasta_binary()
        try:
            _slots = NetworkSlots(pasta) if pasta else None
        except OSError:
            _slots = None
    return _slots


def _start_keeper(native: str | None, procs: list[str]) -> tuple[Keeper, bool]:
    """A keeper in a network slot of its own (True), or in ours when there is no pasta (False)."""
    _network_slots()
    try:
        slot = _slots.acquire() if _slots is not None else None
    except OSError:  # pasta did not start: this keeper gets no network; the engine says so if one is asked
        slot = None
    if _slots is None or slot is None:
        return (Keeper.spawn_native(native, procs, _users) if native else Keeper.fork(procs, _users)), False
    try:
        # The keeper joins the slot's namespace itself: we could not come back to ours rootless (a setns
        # into the host's network namespace needs CAP_SYS_ADMIN over it).
        if native:
            keeper = Keeper.spawn_native(native, procs, _users, slot.netns)
        else:
            keeper = Keeper.fork(procs, _users, slot.netns)
    except BaseException:
        _slots.give_back(slot)
        raise
    _slots.lend(slot, keeper.pid)
    return keeper, True


def serve(sock: socket.socket, native: str | None = None, users: SandboxUsers | None = None) -> None:
    global _users
    _users = users
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    sc.set_process_name("ct-factory")
    seccomp_program()  # compiled once (~30 ms), before the first fork: every forked keeper inherits it
    _network_slots()
    # Every fork shares the heap copy-on-write; a collection in a keeper would write to every object's
    # header and copy the whole heap page by page. Nothing here makes cycles worth collecting.
    gc.disable()
    gc.freeze()
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the engine's terminal is the engine's to handle
    sock.settimeout(IDLE_SLOT_SECONDS)  # an idle engine's free network slots are stopped all the same
    while True:
        try:
            message = sock.recv(1 << 16)
        except InterruptedError:
            continue
        except TimeoutError:
            if _slots is not None:
                _slots.trim()
            continue
        if not message:
            return
        request = json.loads(message)
        try:
            procs = request.get("cgroup_procs", [])
            keeper, networked = _start_keeper(native, procs)
            pidfd = os.pidfd_open(keeper.pid)
        except OSError as exc:
            sock.send(json.dumps({"id": request["id"], "error": str(exc)}).encode())
            continue
        try:
            reply = {"id": request["id"], "pid": keeper.pid, "native": keeper.native, "net": networked}
            socket.send_fds(sock, [json.dumps(reply).encode()],
                            [keeper.sock.fileno(), pidfd])
        finally:
            keeper.sock.close()
            os.close(pidfd)


def main() -> int:
    fd = int(sys.argv[1])
    os.set_inheritable(fd, False)  # passed to us by the engine; not for the keepers we start
    sock = socket.socket(fileno=fd)
    # The sandbox user and mount namespaces (userns.py): every keeper gets them (close-on-exec here, so no
    # pasta does; Keeper.spawn_native passes them on).
    users = SandboxUsers.from_env(os.environ.pop(ENV_NAME)) if ENV_NAME in os.environ else None
    for users_fd in users.fds if users else ():
        os.set_inheritable(users_fd, False)
    try:
        serve(sock, sys.argv[2] if len(sys.argv) > 2 else None, users)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
