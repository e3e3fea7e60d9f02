"""Starting a sandbox: a pid-1 keeper → new namespaces → overlay root → pivot_root → exec.

Process layout (host view):

    factory ──fork_pid1──▶ K, the keeper, pid 1 of its own pid namespace from birth. Forked ahead of time:
                           it has closed every fd but its socket (and the sandbox users' namespaces),
                           joined the run's cgroups and the idmapped mount namespace with fsuid BASE
                           (userns.py), and dies with its parent (PDEATHSIG). When its run's spec
                           arrives it unshares (mnt, uts, ipc [, net]), reports its host pid, mounts
                           the overlay, /proc and a minimal /dev, pivot_root(".", ".") + detach of the
                           old root, injects files, joins the sandbox user namespace as its root
                           (userns.py: host uid BASE, not 0), installs the syscall filter (seccomp.py),
                           drops its privileges and posix_spawns C (a vfork; glibc's clone3 attempt
                           gets ENOSYS and it falls back to clone), then reaps everything until C
                           exits and reports C's exit status and rusage.
                           When K exits the kernel kills whatever C left behind.
                           └─spawn─▶ C, the user's command in its own session, with the limits,
                                     capability bounding set, uid/gid and cwd K set on itself.

One Python fork a run: each fork of an interpreter costs its page tables, a copy-on-write fault for every
page the child then touches (~500 here) and the teardown, which made a separate keeper and pid 1 the
largest cost of a trivial run. keeper.c is this same keeper in C, started by posix_spawn, and is what runs
wherever it could be built (native.py); the Python keeper here is the fallback, kept step for step alike.

All setup is done with syscalls from here, never by running the image's own binaries (a util-linux
`umount` inside the image once wrote /run/mount/ into the layer). Status travels as JSON lines on one
pipe; each message is far below PIPE_BUF, so writers never interleave.
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import resource
import signal
import socket
import stat
import struct
from dataclasses import dataclass, field

from contree_tui.engine.sandbox import seccomp, userns
from contree_tui.engine.sandbox import syscalls as sc
from contree_tui.engine.sandbox.userns import SandboxUsers

DEVICE_NODES = ("null", "zero", "full", "random", "urandom", "tty")
# Docker's default capability set minus MKNOD, NET_RAW and AUDIT_WRITE: what a build needs (chown, setuid
# for package managers, binding low ports) and nothing that reaches the host (no SYS_ADMIN, no mknod).
KEPT_CAPABILITIES = frozenset({0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 31})
# Written by root inside, these would reach the host kernel; they are covered or made read-only.
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs")
PROC_MASKED = ("kcore", "keys", "timer_list", "sched_debug", "kallsyms")

EXIT_SETUP_FAILED = 125
EXIT_EXEC_FAILED = 127


def seccomp_program() -> bytes:
    """Docker's default syscall filter for a sandbox keeping KEPT_CAPABILITIES (seccomp.py), compiled once
    per process: compile it before forking keepers, and a fork inherits it."""
    return seccomp.program_for(KEPT_CAPABILITIES)


@dataclass(frozen=True)
class InjectedFile:
    """An uploaded blob to place at `path` inside the sandbox before the command starts."""

    path: str
    blob: str  # file name inside the blob directory
    mode: int
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class LaunchSpec:
    lowers: list[str]  # topmost first
    upper: str
    work: str
    merged: str
    argv: list[str]
    env: dict[str, str]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    hostname: str = "linuxkit"
    network: bool = True
    files: list[InjectedFile] = field(default_factory=list)
    blob_dir: str | None = None
    rlimits: dict[int, int] = field(default_factory=dict)
    cgroup_procs: list[str] = field(default_factory=list)
    pid_max: int = 0  # the pid namespace's pid_max, the pids cap without cgroups (limit_plan.py); 0: none


@dataclass
class Launched:
    keeper_pid: int
    stdin_w: int | None
    stdout_r: int
    stderr_r: int
    status_r: int
    pidfd: int | None = None  # set when the keeper is not our child (forked by the factory): watch, don't reap


def launch(spec: LaunchSpec) -> Launched:
    """Fork a keeper for `spec` now (it joins spec.cgroup_procs itself); see Keeper for the pre-forked path."""
    keeper = Keeper.fork(spec.cgroup_procs, None)
    return keeper.start(spec)


class Keeper:
    """A keeper forked ahead of time: it has already closed the engine's fds and joined its cgroups, and
    waits on a socket for the run's spec and pipe ends.

    Starting the process and joining the cgroups (0.2-0.3 ms per v1 controller on a 6.18 kernel; ~4 ms
    on older ones, which waited for an RCU grace period) are taken off a run's critical path by starting
    keepers while the engine is idle.
    """

    def __init__(self, pid: int, sock: socket.socket, pidfd: int | None = None, *, native: bool = False,
                 networked: bool = False) -> None:
        self.pid = pid
        self.sock = sock
        self.pidfd = pidfd  # only for keepers forked by the factory, which reaps them
        self.native = native  # keeper.c, which reads native.encode_spec's records instead of a pickle
        # Born in a network namespace of its own with pasta attached (network.py); only such a keeper may
        # run with networking on: any other shares the host's network namespace.
        self.networked = networked

    @classmethod
    def spawn_native(cls, binary: str, cgroup_procs: list[str], users: SandboxUsers | None,
                     netns: int | None = None) -> Keeper:
        """Start keeper.c as pid 1 of a new pid namespace with posix_spawn: a vfork, so nothing of this
        process is copied, touched or torn down for it. With `netns` (a network slot, network.py) it joins
        that network namespace first."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            child.set_inheritable(True)
            own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            try:
                sc.unshare(sc.CLONE_NEWPID)
                try:
                    options = [users.native_arg()] if users else []
                    if netns is not None:
                        options.append(f"-n{netns}")
                    # dup2 of an fd onto itself clears its close-on-exec in the child only (glibc >= 2.29)
                    keep = [(os.POSIX_SPAWN_DUP2, fd, fd)
                            for fd in (*(users.fds if users else ()), *(() if netns is None else (netns,)))]
                    pid = os.posix_spawn(binary, [binary, str(child.fileno()), *options, *cgroup_procs], {},
                                         file_actions=keep)
                finally:
                    sc.setns(own, sc.CLONE_NEWPID)
            finally:
                os.close(own)
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        return cls(pid, parent, native=True)

    @classmethod
    def fork(cls, cgroup_procs: list[str], users: SandboxUsers | None, netns: int | None = None) -> Keeper:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = sc.fork_pid1()
        if pid == 0:  # pragma: no cover - forked child
            parent.close()
            _idle_keeper(child, cgroup_procs, users, netns)
        child.close()
        return cls(pid, parent)

    def start(self, spec: LaunchSpec) -> Launched:
        """Hand the keeper its run; returns the engine's ends of the pipes."""
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        status_r, status_w = os.pipe()
        child_fds = [stdin_r, stdout_w, stderr_w, status_w]
        # The spec rides in a memfd: a run with thousands of injected files pickles to more than one
        # SOCK_SEQPACKET message may carry (~200 KB here); the message itself only says "go".
        spec_fd = os.memfd_create("contree-tui-spec", os.MFD_CLOEXEC)
        child_fds.append(spec_fd)
        try:
            if self.native:
                from contree_tui.engine.sandbox.native import encode_spec  # the engine's side only

                os.write(spec_fd, encode_spec(spec))
            else:
                os.write(spec_fd, pickle.dumps(spec))
            socket.send_fds(self.sock, [b"run"], child_fds)
        except ValueError as exc:  # a NUL byte in an argument or variable: no process can be given it
            os.write(status_w, (json.dumps({"error": str(exc)}) + "\n").encode())
        except OSError as exc:
            # The keeper died before its run (killed, or the engine is closing): report it as a setup error.
            os.write(status_w, (json.dumps({"error": f"sandbox keeper is gone: {exc}"}) + "\n").encode())
        finally:
            for fd in child_fds:
                os.close(fd)
            self.sock.close()
        for fd in (stdout_r, stderr_r, status_r):
            os.set_blocking(fd, False)
        return Launched(self.pid, stdin_w, stdout_r, stderr_r, status_r, pidfd=self.pidfd)

    def discard(self) -> None:
        """An idle keeper that will not be used: closing its socket makes it exit; reap it if it is ours."""
        self.sock.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)


def _idle_keeper(sock: socket.socket, cgroup_procs: list[str], users: SandboxUsers | None,
                 netns: int | None = None) -> None:
    try:
        sc.set_process_name("ct-keeper")
        detach_child({sock.fileno(), *(users.fds if users else ()), *(() if netns is None else (netns,))},
                     cgroup_procs)
        if netns is not None:  # its network slot (network.py)
            sc.setns(netns, sc.CLONE_NEWNET)
            os.close(netns)
        if users:
            userns.enter_keeper(users)
            if users.idmapped:
                os.close(users.mntns_fd)
        message, fds, _, _ = socket.recv_fds(sock, 64, 5)
    except BaseException:  # noqa: BLE001
        os._exit(EXIT_SETUP_FAILED)
    if not message or len(fds) != 5:
        os._exit(0)  # the engine let this keeper go
    sock.close()
    *pipes, spec_fd = fds
    with os.fdopen(spec_fd, "rb") as fh:
        fh.seek(0)
        spec = pickle.loads(fh.read())
    _sandbox(spec, *pipes, users=users)


def detach_child(keep: set[int], cgroup_procs: list[str]) -> None:
    """First steps of every forked helper: only `keep` stays open, it dies with its parent, signal handlers
    are back to default (the factory reaps on SIGCHLD; ours must not reap our children), cgroups joined."""
    _close_all_except(keep)
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    for procs in cgroup_procs:
        with open(procs, "w") as fh:
            fh.write("0")  # "0" is the writer, in any pid namespace (we may be pid 1 of our own)


def report_exec_failure(status_w: int, command: str, exc: BaseException) -> None:
    message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    try:
        _report(status_w, exec_error=f"{command}: {message}")
    except OSError:
        pass


def _report(fd: int, **message: object) -> None:
    os.write(fd, (json.dumps(message) + "\n").encode())


def _close_all_except(keep: set[int]) -> None:
    previous = 2
    for fd in sorted(keep):
        if fd > previous + 1:
            sc.close_range(previous + 1, fd - 1)
        previous = max(previous, fd)
    sc.close_range(previous + 1)


def _sandbox(spec: LaunchSpec, stdin_r: int, stdout_w: int, stderr_w: int, status_w: int, *,
             users: SandboxUsers | None = None) -> None:
    """The keeper's run, as pid 1 of the sandbox: build the root, spawn the command, reap until it exits."""
    try:
        sc.set_process_name("ct-sandbox")
        # Other runs' pipes must not stay open here, or their readers would never see EOF.
        blob_fd = os.open(spec.blob_dir, os.O_PATH | os.O_DIRECTORY) if spec.files and spec.blob_dir else -1
        _close_all_except({stdin_r, stdout_w, stderr_w, status_w} | ({blob_fd} if blob_fd >= 0 else set())
                          | ({users.userns_fd} if users else set()))
        # The run's scratch dirs are made here, on the other core, rather than on the engine's event loop.
        for path in (spec.upper, spec.work, spec.merged):
            os.makedirs(path, exist_ok=True)
        flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC
        if not spec.network:
            flags |= sc.CLONE_NEWNET
        sc.unshare(flags)
        if spec.pid_max:  # our pid namespace's own (Linux >= 6.14), while we hold CAP_SYS_ADMIN over it
            with open("/proc/sys/kernel/pid_max", "w") as fh:
                fh.write(str(spec.pid_max))
        # Until pivot_root, /proc is still the host's: its "self" is our pid as the engine sees it.
        _report(status_w, sandbox_pid=int(os.readlink("/proc/self")))
        _build_root(spec)
        if blob_fd >= 0:
            _inject_files(spec.files, blob_fd, (users.ids.uid_base, users.ids.gid_base) if users else (0, 0))
            os.close(blob_fd)
        os.makedirs(spec.cwd, mode=0o755, exist_ok=True)
        if users:  # its root from here on; the bounding set is dropped after (setns makes it full again)
            userns.join(users.userns_fd)
            os.close(users.userns_fd)
        # The last setup step: from here pid 1 and the command run under Docker's syscall filter. Installed
        # while still (the sandbox's) root, as runc does without no-new-privileges: setuid programs keep
        # working; the limits, capability drop, credential change and posix_spawn that follow are all
        # allowed by it. setns, which it refuses, is done: the user namespace was joined just above.
        seccomp.apply(seccomp_program())
    except BaseException as exc:  # noqa: BLE001 - everything is reported, nothing may escape a fork
        try:
            _report(status_w, error=f"sandbox setup failed: {exc}")
        except OSError:
            pass
        os._exit(EXIT_SETUP_FAILED)
    try:
        command_pid = _spawn_command(spec, stdin_r, stdout_w, stderr_w, status_w)
    except BaseException as exc:  # noqa: BLE001 - nothing may escape a fork (ValueError: a NUL byte)
        message = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        _report(status_w, exec_error=f"{spec.argv[0]}: {message}")
        os._exit(EXIT_EXEC_FAILED)
    for fd in (stdin_r, stdout_w, stderr_w):
        os.close(fd)
    _report(status_w, spawned=command_pid)
    # pid 1 reaps every orphan; only the command's own exit ends the sandbox.
    while True:
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if pid == command_pid:
            _report(status_w, exit=_describe_exit(status, usage))
            os._exit(0)


def _build_root(spec: LaunchSpec) -> None:
    merged = spec.merged
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    sc.overlay_mount(spec.lowers, spec.upper, spec.work, merged)
    proc = f"{merged}/proc"
    sc.mount("proc", proc, "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    for name in PROC_READ_ONLY:
        path = f"{proc}/{name}"
        if os.path.exists(path):
            sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
            sc.mount(None, path, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)
    for name in PROC_MASKED:
        path = f"{proc}/{name}"
        if os.path.exists(path):
            sc.mount("/dev/null", path, None, sc.MS_BIND)
    dev = f"{merged}/dev"
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_NOEXEC, "mode=755,size=64k")
    for name in DEVICE_NODES:
        node = f"{dev}/{name}"
        os.close(os.open(node, os.O_CREAT | os.O_WRONLY, 0o666))
        sc.mount(f"/dev/{name}", node, None, sc.MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/shm", 0o1777)
    sc.mount("shm", f"{dev}/shm", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=1777,size=64m")
    os.mkdir(f"{dev}/pts", 0o755)
    sc.sethostname(spec.hostname)
    if not spec.network:
        _loopback_up()
    userns.allow_low_ports()
    os.chdir(merged)
    # pivot_root(".", ".") stacks the old root on the new one; detaching it leaves no path back to the
    # host tree (a chroot was escaped in the runtime probes; this was not).
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def _loopback_up() -> None:
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def _inject_files(files: list[InjectedFile], blob_fd: int, base: tuple[int, int]) -> None:
    """Copy uploaded blobs in after pivot_root, so a symlink in the image resolves inside the sandbox.

    The blob directory is reached only through a descriptor opened before the pivot. A file whose bytes
    and attributes already match is left alone, so re-attaching an unchanged folder changes nothing.
    Owners are host ids: (uid_base + uid, gid_base + gid) with sandbox users (userns.py), on disk uid, gid.
    """
    for item in files:
        parent = os.path.dirname(item.path)
        os.makedirs(parent, mode=0o755, exist_ok=True)
        source = os.open(item.blob, os.O_RDONLY, dir_fd=blob_fd)
        try:
            if _same_file(item, source, base):
                continue
            try:
                if os.path.isdir(item.path) and not os.path.islink(item.path):
                    raise IsADirectoryError(f"cannot place a file at {item.path}: it is a directory")
                os.unlink(item.path)
            except FileNotFoundError:
                pass
            target = os.open(item.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                offset = 0  # explicit: _same_file may have read the blob through a shared file offset
                while (sent := os.sendfile(target, source, offset, 1 << 20)) > 0:
                    offset += sent
                os.fchown(target, base[0] + item.uid, base[1] + item.gid)
                os.fchmod(target, item.mode)
            finally:
                os.close(target)
        finally:
            os.close(source)


def _same_file(item: InjectedFile, source: int, base: tuple[int, int]) -> bool:
    try:
        st = os.lstat(item.path)
    except OSError:
        return False
    src = os.fstat(source)
    if not (stat.S_ISREG(st.st_mode) and st.st_size == src.st_size
            and stat.S_IMODE(st.st_mode) == item.mode and st.st_uid == base[0] + item.uid
            and st.st_gid == base[1] + item.gid):
        return False
    with open(item.path, "rb") as current, os.fdopen(os.dup(source), "rb") as blob:
        while True:
            a, b = current.read(1 << 20), blob.read(1 << 20)
            if a != b:
                return False
            if not a:
                return True


def _spawn_command(spec: LaunchSpec, stdin_r: int, stdout_w: int, stderr_w: int, status_w: int) -> int:
    """Drop privileges in pid 1 itself, then posix_spawn the command (a vfork: no copy of this process).

    Limits, the capability bounding set, ids and cwd are inherited by the command; pid 1 needs none of
    its powers after setup, only to wait and report.
    """
    address_space = None
    for limit, value in spec.rlimits.items():
        # Only ever lower a limit: the engine itself may lack CAP_SYS_RESOURCE to raise one.
        _, hard = resource.getrlimit(limit)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        if limit == resource.RLIMIT_AS:
            address_space = value
            continue
        # RLIMIT_CPU: SIGXCPU at the limit (a signal that names the cause), SIGKILL a second later
        cpu = limit == resource.RLIMIT_CPU and (hard == resource.RLIM_INFINITY or value < hard)
        resource.setrlimit(limit, (value, value + 1 if cpu else value))
    sc.close_range(3, cloexec=True)  # only 0-2 reach the command
    sc.drop_bounding_capabilities(KEPT_CAPABILITIES)
    os.setgroups([])
    os.setgid(spec.gid)
    os.setuid(spec.uid)
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)  # a credential change clears it
    os.chdir(spec.cwd)
    if address_space is not None:
        return _fork_exec_with_address_space(spec, address_space, stdin_r, stdout_w, stderr_w, status_w)
    # posix_spawnp looks the command up in *this* process's PATH.
    os.environ["PATH"] = spec.env.get("PATH", "")
    return os.posix_spawnp(
        spec.argv[0], spec.argv, spec.env,
        file_actions=[(os.POSIX_SPAWN_DUP2, stdin_r, 0), (os.POSIX_SPAWN_DUP2, stdout_w, 1),
                      (os.POSIX_SPAWN_DUP2, stderr_w, 2)],
        setsid=True,
        # Python ignores SIGPIPE and SIGXFSZ; ignored dispositions survive exec, so reset them.
        setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM), setsigmask=(),
    )


def _fork_exec_with_address_space(spec: LaunchSpec, address_space: int, stdin_r: int, stdout_w: int, stderr_w: int,
                                  status_w: int) -> int:
    """The no-cgroup memory fallback, RLIMIT_AS, set in a forked child just before exec.

    On pid 1 itself it would count the forked engine's whole address space: under a small limit the stack
    posix_spawn maps fails (ENOMEM) and no command could start at all.
    """
    pid = os.fork()
    if pid:
        return pid
    try:  # pragma: no cover - the forked child; an exec failure is reported like posix_spawn's
        os.setsid()
        for fd, target in ((stdin_r, 0), (stdout_w, 1), (stderr_w, 2)):
            os.dup2(fd, target)
        for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        os.execvpe(spec.argv[0], spec.argv, spec.env)
    except BaseException as exc:  # noqa: BLE001
        report_exec_failure(status_w, spec.argv[0], exc)
    os._exit(EXIT_EXEC_FAILED)


# exit-event resource names (the spec's) → struct rusage fields
_RUSAGE_FIELDS = (
    ("max_rss_kb", "ru_maxrss"), ("shared_memory", "ru_ixrss"), ("unshared_memory", "ru_idrss"),
    ("swaps", "ru_nswap"), ("minor_faults", "ru_minflt"), ("major_faults", "ru_majflt"),
    ("voluntary_ctx_switches", "ru_nvcsw"), ("involuntary_ctx_switches", "ru_nivcsw"),
    ("block_input_ops", "ru_inblock"), ("block_output_ops", "ru_oublock"), ("ipc_msgs_sent", "ru_msgsnd"),
    ("ipc_msgs_received", "ru_msgrcv"), ("signals_received", "ru_nsignals"),
)


def _describe_exit(status: int, usage: resource.struct_rusage) -> dict[str, object]:
    signalled = os.WIFSIGNALED(status)
    return {
        "code": -1 if signalled else os.WEXITSTATUS(status),
        "signal": os.WTERMSIG(status) if signalled else -1,
        "core_dump": bool(os.WCOREDUMP(status)) if signalled else False,
        "resources": {
            "user_time_us": int(usage.ru_utime * 1_000_000),
            "sys_time_us": int(usage.ru_stime * 1_000_000),
            **{name: getattr(usage, field) for name, field in _RUSAGE_FIELDS},
        },
    }
