"""Sandbox networking: a network namespace of its own for every sandbox, outbound access through pasta.

A sandbox with networking on used to share the host's network namespace: it could bind host ports, reach
every service on the host's 127.0.0.1 and ::1 (the engine's own TCP API among them) and see the host's
abstract unix sockets. Now every keeper is born in a network namespace of its own whose only way out is a
pasta process (Debian: `passt`), a user-mode TCP/IP stack that turns the sandbox's packets into ordinary
sockets opened on the host, so the sandbox gets what any program on the host gets *outbound*, and nothing
else: no port is forwarded either way (`-t/-u/-T/-U none`; pasta's defaults forward every bound port) and
the gateway is not mapped to the host's loopback (`--no-map-gw`; by default it is).

Measured on this machine (Firecracker VM, 2 cores, kernel 6.18, passt 0.0~git20230309), per pasta start:
30 ms from spawn to configured namespace, 28.5 ms of CPU (7,600 page faults: its static buffers), 31 MB RSS.
A bare `/bin/true` run costs ~3 ms of CPU, so:
  (a) one namespace + one pasta per engine, every run joins it: ~0 per run, but sandboxes share loopback,
      ports and abstract sockets, so they reach each other's listeners. Rejected.
  (c) a pasta per run, started when the run starts: +30 ms latency and +28.5 ms CPU per run (throughput on
      2 cores would fall from ~200 to under 70 runs/s). Rejected.
  (b) keepers born ahead of time into a namespace with its pasta already attached: the latency is off the
      critical path, but the CPU is not, so a fresh namespace per run is (c)'s throughput again.
What is built is (b) with the namespaces kept: a *slot* is a namespace with its pasta, lent to one keeper
at a time and taken back when that keeper is reaped. A keeper is pid 1 of its sandbox's pid namespace, so
when it has been reaped every process of that sandbox is gone, and with it every socket it had: the next
sandbox in the slot cannot reach anything the previous one left listening. Two sandboxes never share a slot
at the same time. Joining a slot is one setns (~microseconds); a slot's pasta is started only when the pool
of slots grows, and a slot left free for IDLE_SLOT_SECONDS is stopped to give its memory back.

Lifetimes: the factory (factory.py) owns the slots. Each pasta is the factory's child (so the factory reaps
it and can kill it without a pid-reuse race) but lives in a pid namespace whose pid 1, the *guard*, exits
when the factory does (it reads a pipe only the factory holds), and the kernel kills every process of a pid
namespace whose pid 1 exits: no pasta outlives the factory, which dies with the engine.

Known limits: pasta connects from the host, so a sandbox reaches what the host reaches outbound, including
services bound to the host's *other* non-loopback addresses (the address of the outbound interface is the
sandbox's own copy, so that one is not) and the gateway. A reused namespace still shows the last sandbox's
TIME_WAIT sockets and interface counters (/proc/net/tcp, /proc/net/dev): metadata, no reachable state.
pasta runs as uid 0 with CAP_NET_BIND_SERVICE and CAP_SYS_ADMIN (see PASTA_OPTIONS) parsing the sandbox's
packets. This passt (0.0~git20230309) loses the server's FIN about one time in five when the sandbox
half-closes first (measured: 3 of 15 `shutdown(SHUT_WR)` then read; 0 of 15 without), so such a client
waits for its own timeout.
"""

from __future__ import annotations

import fcntl
import os
import select
import shutil
import signal
import threading
import time
from dataclasses import dataclass

from contree_tui.engine.sandbox import syscalls as sc

ENV_PASTA = "CONTREE_TUI_PASTA"  # a path to pasta; empty: no pasta (networking runs are refused)
OFFLINE = ("or run offline: `networking: {\"enabled\": false}` in the request; `--no-network` for contree-tui run, "
           "engine run, pipeline and build (a pipeline's steps: `.set(network=False)` too), `:network off` in its "
           "TUI")
MISSING = f"networking needs pasta: apt-get install passt ({OFFLINE})"
# A free slot (29 MB of pasta RSS; 19.6 MB with IPv4 only) is stopped after this long unused. Not a count: a
# cap of 4 free slots made 4 concurrent spawners (8 slots in use: 4 running, 4 idle keepers) start 32 pastas
# in 120 runs (~100 ms each under load, blocking the factory) and halved bench_throughput's rate.
IDLE_SLOT_SECONDS = 30.0
# A pasta that has not configured its namespace by then is taken as failed (0.8 s seen under load).
READY_TIMEOUT = 10.0
_NETNS_FD, _READY_FD = 3, 4  # where pasta finds them (posix_spawn dup2s them there)
PASTA_OPTIONS = (
    "--quiet", "--foreground",
    # pasta as root drops to nobody before joining the namespace, and then cannot (EPERM): stay uid 0; it
    # still drops every capability but NET_BIND_SERVICE and SYS_ADMIN, pivots into an empty root and
    # applies its own seccomp filter.
    "--runas", "0:0",
    "--config-net",  # addresses, routes and the interface set up by pasta itself, copied from the host's
    "--tcp-ports", "none", "--udp-ports", "none", "--tcp-ns", "none", "--udp-ns", "none",  # no forwarding
    "--no-map-gw",  # else the gateway address is the host's loopback
    "--no-dhcp", "--no-dhcpv6", "--no-ra",  # --config-net did their job; nothing to serve
    "--no-netns-quit",  # the namespace is a /proc/self/fd path: nothing to watch; the factory stops pasta
    "--netns", f"/proc/self/fd/{_NETNS_FD}",  # a descriptor: /proc/PID/ns/net needs ptrace rights pasta drops
    "--pid", f"/proc/self/fd/{_READY_FD}",  # written once the namespace is configured: the ready signal
)


def _above_targets(fd: int) -> int:
    """`fd`, moved above the numbers pasta gets its descriptors at: a dup2 onto 3 must not overwrite the
    source of the dup2 onto 4."""
    if fd > _READY_FD:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _READY_FD + 1)
    os.close(fd)
    return moved


TUN = "/dev/net/tun"
TUN_UNUSABLE = (f"networking needs {TUN}, which this user cannot open (pasta attaches the sandbox's interface "
                f"there): an administrator makes it usable once with `chmod 0666 {TUN}` (Debian's default mode; "
                f"some VMs ship it 0600); {OFFLINE}")


def pasta_binary() -> str | None:
    """The pasta to use, or None (then networking is refused): also None when the engine may not open
    /dev/net/tun (rootless, where it is 0600 root: every pasta would fail "Failed to open tun socket")."""
    if not tun_usable():  # first: 1.6 us, where the PATH lookup is ~17 (the factory asks at every keeper start)
        return None
    configured = os.environ.get(ENV_PASTA)
    return configured or None if configured is not None else shutil.which("pasta")


def tun_usable() -> bool:
    return os.access(TUN, os.R_OK | os.W_OK)


def missing_reason() -> str:
    """Why networking is refused (pasta_binary() is None)."""
    configured = os.environ.get(ENV_PASTA)
    installed = configured or None if configured is not None else shutil.which("pasta")
    return TUN_UNUSABLE if installed is not None and not tun_usable() else MISSING


def resolv_conf(host_resolv_conf: str = "/etc/resolv.conf") -> str:
    """The sandbox's /etc/resolv.conf: the host's resolvers, which it reaches through pasta like any host.

    Loopback resolvers (systemd-resolved's 127.0.0.53) are dropped: the sandbox's loopback is its own, and
    pasta (this version, with --no-map-gw) forwards nothing to the host's; so are link-local ones (fe80::…%if:
    the sandbox's interface is not the host's). A host with only those leaves sandboxes without DNS.
    """
    lines = []
    try:
        with open(host_resolv_conf, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                words = line.split()
                if not words or words[0] not in ("nameserver", "search", "options"):
                    continue
                if words[0] == "nameserver" and (len(words) < 2 or words[1].startswith(("127.", "::1", "fe80:"))):
                    continue
                lines.append(" ".join(words))
    except OSError:
        pass
    return "".join(f"{line}\n" for line in lines)


def write_network_layer(path: str) -> None:
    """The lower layer put over a networked run's image: only /etc/resolv.conf (resolv_conf()).

    Like Docker's: it shadows the image's own resolv.conf, and a run's change to it is committed with the
    run's layer but hidden under this one in later networked runs. Rewritten at each engine start (no run
    has it mounted then), so it follows the host's resolvers.
    """
    etc = os.path.join(path, "etc")
    os.makedirs(etc, mode=0o755, exist_ok=True)
    partial = os.path.join(etc, f".resolv.conf.{os.getpid()}")
    with open(partial, "w", encoding="utf-8") as fh:
        fh.write(resolv_conf())
    os.chmod(partial, 0o644)
    os.replace(partial, os.path.join(etc, "resolv.conf"))


def new_network_namespace() -> int:
    """A descriptor of a new network namespace, made by a short-lived thread (a network namespace is per
    thread): this process never leaves its own. Rootless it could not come back (setns into the host's
    network namespace needs CAP_SYS_ADMIN in the host's user namespace)."""
    made: list[int | BaseException] = []

    def unshare_and_open() -> None:
        try:
            sc.unshare(sc.CLONE_NEWNET)
            made.append(os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC))
        except BaseException as exc:  # noqa: BLE001 - raised in the caller
            made.append(exc)

    thread = threading.Thread(target=unshare_and_open, name="ct-netns")
    thread.start()
    thread.join()
    result = made[0]
    if isinstance(result, BaseException):
        raise result
    return result


class PastaError(OSError):
    pass


@dataclass
class Slot:
    netns: int  # a descriptor of the namespace (keeps it alive)
    pasta: int  # pasta's pid (our child)
    dead: bool = False
    free_since: float = 0.0  # time.monotonic() when it was last given back
    ready: int | None = None  # read end of pasta's ready pipe until _wait_ready has read it


class NetworkSlots:
    """Network namespaces, each served by its own pasta, lent to one keeper at a time (see the module doc).

    Single-threaded by design (the factory); `reaped` may be called from a SIGCHLD handler: it only appends.
    """

    def __init__(self, pasta: str) -> None:
        self.pasta = pasta
        self._free: list[Slot] = []
        self._spare: list[Slot] = []  # at most one, started ahead and not yet waited for
        self._lent: dict[int, Slot] = {}  # keeper pid -> slot
        self._by_pasta: dict[int, Slot] = {}
        self._reaped: list[int] = []
        self._own_pid = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self._guard_pid, self._guard_ns, self._guard_pipe = self._start_guard()

    # -- the guard ------------------------------------------------------------------------------------
    def _start_guard(self) -> tuple[int, int, int]:
        """pid 1 of the pastas' pid namespace; it exits (and the kernel kills the pastas) when we do."""
        read_end, write_end = os.pipe()
        sc.unshare(sc.CLONE_NEWPID)
        pid = -1
        try:
            pid = os.fork()
        finally:
            if pid != 0:  # our own next children are ordinary ones again
                sc.setns(self._own_pid, sc.CLONE_NEWPID)
        if pid == 0:  # pragma: no cover - the guard
            try:
                sc.set_process_name("ct-netguard")
                if read_end > 3:
                    sc.close_range(3, read_end - 1)
                sc.close_range(read_end + 1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the engine's terminal: not ours
                while os.read(read_end, 1):
                    pass
            finally:
                os._exit(0)
        os.close(read_end)
        guard_ns = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        return pid, guard_ns, write_end

    # -- slots ----------------------------------------------------------------------------------------
    def acquire(self) -> Slot:
        """A free slot, else the spare being started, else a new one (blocks until its pasta is ready).

        When the last free slot goes, a spare starts at once without being waited for: its pasta (30 ms of
        CPU) works on the other core while the factory serves requests, so a growing pool of keepers (4
        concurrent spawners need 4 more slots than 1 does) seldom waits for one.
        """
        self.trim()
        slot = None
        while self._free and slot is None:
            candidate = self._free.pop()
            slot = None if candidate.dead else candidate
        if slot is None:
            slot = self._spare.pop() if self._spare else self._start_slot()
            self._wait_ready(slot)
        if not self._free and not self._spare:
            try:
                self._spare.append(self._start_slot())
            except OSError:
                pass  # the next acquire tries again, and reports
        return slot

    def lend(self, slot: Slot, keeper_pid: int) -> None:
        self._collect()  # a reaped keeper whose pid the new one reuses is settled first
        self._lent[keeper_pid] = slot

    def give_back(self, slot: Slot) -> None:
        """A slot acquired but not lent (its keeper did not start)."""
        self._release(slot)

    def reaped(self, pid: int) -> None:
        """A child of ours was reaped (a keeper or a pasta); handled at the next acquire."""
        self._reaped.append(pid)

    def _collect(self) -> None:
        while self._reaped:
            pid = self._reaped.pop()
            slot = self._lent.pop(pid, None)
            if slot is not None:
                self._release(slot)
                continue
            slot = self._by_pasta.pop(pid, None)
            if slot is not None:  # pasta died on its own: the slot has no way out any more
                slot.dead = True
                if slot in self._free:
                    self._free.remove(slot)
                    os.close(slot.netns)

    def _release(self, slot: Slot) -> None:
        if slot.dead:
            self._stop(slot)
        else:
            slot.free_since = time.monotonic()
            self._free.append(slot)

    def trim(self) -> None:
        """Stop the slots nobody used for IDLE_SLOT_SECONDS (called between requests and when idle)."""
        self._collect()
        stale = time.monotonic() - IDLE_SLOT_SECONDS
        for slot in [slot for slot in self._free if slot.free_since < stale]:
            self._free.remove(slot)
            self._stop(slot)

    def _stop(self, slot: Slot) -> None:
        if slot.ready is not None:
            os.close(slot.ready)
            slot.ready = None
        if not slot.dead:
            slot.dead = True
            try:
                os.kill(slot.pasta, signal.SIGKILL)  # still our unreaped child: the pid is still its
            except ProcessLookupError:
                pass
        os.close(slot.netns)

    def _new_slot(self) -> Slot:
        slot = self._start_slot()
        self._wait_ready(slot)
        return slot

    def _start_slot(self) -> Slot:
        """A new namespace and its pasta, started but not waited for (see _wait_ready)."""
        netns = _above_targets(new_network_namespace())
        ready_r, ready_w = os.pipe()
        ready_w = _above_targets(ready_w)
        try:
            sc.setns(self._guard_ns, sc.CLONE_NEWPID)
            try:
                pid = os.posix_spawn(
                    self.pasta, [self.pasta, *PASTA_OPTIONS], {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                    file_actions=[(os.POSIX_SPAWN_DUP2, netns, _NETNS_FD), (os.POSIX_SPAWN_DUP2, ready_w, _READY_FD),
                                  (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                                  (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                                  (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)],
                    # A session of its own: a Ctrl-C in the engine's terminal is not pasta's to die of. SIGPIPE
                    # back to its default: with it ignored (as Python leaves it) this pasta does not start.
                    setsid=True, setsigdef=(signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD),
                    setsigmask=())
            finally:
                sc.setns(self._own_pid, sc.CLONE_NEWPID)
        except OSError:
            os.close(netns)
            raise
        finally:
            os.close(ready_w)
        slot = Slot(netns, pid, ready=ready_r)
        self._by_pasta[pid] = slot
        return slot

    def _wait_ready(self, slot: Slot) -> None:
        """Until pasta has configured the slot's namespace (it writes its pid then); stops it if it fails."""
        if slot.ready is None:
            return
        try:
            readable, _, _ = select.select([slot.ready], [], [], READY_TIMEOUT)
            written = os.read(slot.ready, 64) if readable else b""
        finally:
            os.close(slot.ready)
            slot.ready = None
        if not written.strip() or slot.dead:  # EOF without a pid: pasta exited; or the timeout
            self._stop(slot)
            raise PastaError(f"pasta did not start ({self.pasta})")

    def close(self) -> None:
        for slot in [*self._free, *self._lent.values(), *self._spare]:
            self._stop(slot)
        self._free.clear()
        self._spare.clear()
        self._lent.clear()
        os.close(self._guard_pipe)  # the guard exits; the kernel kills any pasta left
