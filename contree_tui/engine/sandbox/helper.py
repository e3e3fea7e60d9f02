"""Confined helper processes: image content is read by a process that holds no host privilege, and the
engine never waits for one synchronously.

    engine ──fork_pid1──▶ H, pid 1 of its own pid namespace. H unshares mount, ipc, uts and network
                          namespaces, mounts the image's layers read-only (nodev, nosuid, noexec) over a
                          mountpoint of its now private mount namespace, pivot_roots into it and detaches the
                          host's tree, then joins the engine's sandbox user namespace (userns.py) as its
                          root, host uid BASE, with CAP_DAC_READ_SEARCH as its only capability, held in that
                          namespace only (so it can read an image's 0600 files, never a host file),
                          no_new_privs, rlimits, and Python imports refused. Then `work(out)` writes one JSON
                          header line and a payload.

With sandbox users the image's layers are the engine's idmapped views (joined as a keeper joins them, with
fsuid BASE for the overlay mount), so the image's root files are the helper's root's. Measured on this VM
(bench_inspect series 1, `list /`, median of 50 with CI running): 11.7-12.0 ms as HELPER_UID, 11.3 ms
so: joining the namespaces costs nothing measurable. Without sandbox users (EngineConfig(sandbox_ids=None))
a helper is HELPER_UID with that capability in the host's namespace. Rootless (userns.py) nothing is
idmapped: the engine's ids are the sandboxes' own, so the writable and linking roots are plain binds, and the
helper, joining the nested sandbox namespace, holds its capability over the layers' ids (all mapped there) only.

What H may meet is hostile: an image chooses its /etc/nsswitch.conf, its gconv modules, its libraries, even
files at the paths of the engine's Python modules. noexec makes every dlopen of an image file fail (mmap
PROT_EXEC is refused), the import block keeps Python from loading the image's .py files, and should code of
the image run anyway it runs as an unprivileged uid in empty namespaces with no host path in reach.

The engine reads H's pipe through a non-blocking transport on its event loop, with a deadline for the
header, one between payload chunks and one for H's whole life; when one passes H is killed and the request
fails with a 504. H's exit is awaited through a pidfd, so reaping never blocks the loop either.

A writable variant (HelperSet.start_writable, for extracting a rootfs tarball into a new layer) differs in
three steps only: its root is the target directory bind-mounted onto itself (nosuid, nodev, noexec; idmapped
to the sandbox namespace, so its chown to u lands on disk as u) instead of the image's read-only overlay, it
keeps the capabilities the caller names instead of CAP_DAC_READ_SEARCH, and it is handed one input as an open
fd (fd 4), never a host path.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import json
import locale
import os
import resource
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from contree_tui.engine.models import EngineError, NotFound, Unprocessable
from contree_tui.engine.sandbox import seccomp
from contree_tui.engine.sandbox import syscalls as sc
from contree_tui.engine.sandbox.credentials import CAP_DAC_READ_SEARCH, become_unprivileged, set_capabilities
from contree_tui.engine.sandbox.launch import seccomp_program
from contree_tui.engine.sandbox.read_only_fd import reopen_read_only
from contree_tui.engine.sandbox.userns import SandboxUsers, enter_keeper, idmap_over_itself, join

# Without sandbox users (EngineConfig(sandbox_ids=None)): an id no host account or subordinate range uses
# (systemd leaves 0x70000000-0x7FFDFFFF unassigned), so a helper owns no host file and shares a uid with no
# host process. With them, a helper is the sandboxes' root (host uid BASE) and holds no host capability.
HELPER_UID = HELPER_GID = 2_000_000_000
HELPER_CAPABILITIES = frozenset({CAP_DAC_READ_SEARCH})
HEADER_LIMIT = 64 << 10  # a header is a short JSON object; anything longer is a broken (or hostile) helper
CHUNK = 256 << 10
EXIT_CUT = 2  # the payload was cut short after the header went out (the engine aborts the response)
_MESSAGE_CHARS = 2000
_ANSWER_STATUSES = (400, 404, 422)
MAX_HELPERS = 16  # at once per engine: each may use a CPU and HelperLimits.memory_bytes
SLOT_WAIT = 10.0
HELPER_NICE = 10  # what a helper may answer; anything else reads as its failure
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4


class HelperTimeout(EngineError):
    """504: the request is valid but the helper serving it did not answer in time (it was killed).
    Not 400/422 (the client's request is fine, retrying it unchanged is legitimate) and not 503 (nothing is
    overloaded): the engine waited on a worker of its own, which is what a gateway timeout describes."""

    status = 504


class HelperFailed(EngineError):
    status = 500


@dataclass(frozen=True)
class HelperLimits:
    cpu_seconds: int = 60
    memory_bytes: int = 1 << 30  # address space on top of what the forked engine already maps
    open_files: int = 64
    lifetime: float = 300.0  # seconds from fork to kill, whatever the helper is doing
    file_bytes: int = 0  # RLIMIT_FSIZE: a read-only helper writes no file; an extracting one up to this


@dataclass(frozen=True)
class ImageRoot:
    """The image's layers as a read-only overlay on `mountpoint` (the inspect helpers' root)."""

    lowers: list[str]
    mountpoint: str
    capabilities: frozenset[int] = HELPER_CAPABILITIES

    def prepare(self, users: SandboxUsers | None) -> None:
        """Before the helper's own mount namespace: with sandbox users, the engine's idmapped view of the
        layers and fsuid BASE, as a keeper (userns.enter_keeper), so the overlay's lowers show on-disk id u
        as the sandbox namespace's u."""
        if users is not None:
            enter_keeper(users)

    def mount(self, users: SandboxUsers | None) -> str:
        sc.overlay_mount(self.lowers, None, None, self.mountpoint, attrs=sc.MOUNT_ATTR_RDONLY
                         | sc.MOUNT_ATTR_NODEV | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NOEXEC)
        return self.mountpoint


@dataclass(frozen=True)
class WritableRoot:
    """`directory` bind-mounted onto itself, writable but nosuid, nodev and noexec: setuid bits may be
    written (they matter in a sandbox later) but nothing in it is executed, or opened as a device, here."""

    directory: str
    capabilities: frozenset[int]

    def prepare(self, users: SandboxUsers | None) -> None:
        pass  # the host's mount namespace: `directory` may be under runs/, idmapped (once only) in the engine's

    def mount(self, users: SandboxUsers | None) -> str:
        if users is not None and users.idmapped:  # an idmapped bind: the sandbox namespace's id u lands on disk as u
            idmap_over_itself(self.directory, users.userns_fd,
                              sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV | sc.MOUNT_ATTR_NOEXEC)
            return self.directory
        sc.mount(self.directory, self.directory, None, sc.MS_BIND)
        sc.mount(None, self.directory, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_NOSUID | sc.MS_NODEV
                 | sc.MS_NOEXEC)
        return self.directory


_VIEW_ATTRS = sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV | sc.MOUNT_ATTR_NOEXEC


@dataclass(frozen=True)
class LinkRoot:
    """A tmpfs root holding two views: `/layer`, the new layer `directory` (writable, as WritableRoot
    mounts it), and `/lower`, the layers below it as a read-only overlay (as ImageRoot mounts an image),
    both nosuid, nodev, noexec: for copying lower files a layer hard-links to (lower_links.py), each name
    resolved with RESOLVE_IN_ROOT inside its view."""

    directory: str
    lowers: list[str]
    mountpoint: str
    capabilities: frozenset[int]

    def prepare(self, users: SandboxUsers | None) -> None:
        if users is not None:
            enter_keeper(users)  # the idmapped layers, fsuid BASE for the overlay (ImageRoot.prepare)

    def mount(self, users: SandboxUsers | None) -> str:
        flags = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
        sc.mount("tmpfs", self.mountpoint, "tmpfs", flags, "size=64k,mode=0755")
        layer, lower, empty = f"{self.mountpoint}/layer", f"{self.mountpoint}/lower", f"{self.mountpoint}/empty"
        for path in (layer, lower, empty):
            os.mkdir(path)
        if users is not None and users.idmapped:
            idmap_over_itself(self.directory, users.userns_fd, _VIEW_ATTRS, target=layer)
        else:
            sc.mount(self.directory, layer, None, sc.MS_BIND)
            sc.mount(None, layer, None, sc.MS_REMOUNT | sc.MS_BIND | flags)
        # An overlay without an upper needs two lowers (one layer below: "lowerdir must be > 1"): an empty
        # directory on top changes nothing.
        sc.overlay_mount([empty, *self.lowers], None, None, lower, attrs=sc.MOUNT_ATTR_RDONLY | _VIEW_ATTRS)
        return self.mountpoint


@dataclass(frozen=True)
class EmptyRoot:
    """An empty read-only tmpfs on `mountpoint`, for a helper that reads only its input fd (an image
    archive's tar structure): no file of the host or of any image is in its reach."""

    mountpoint: str
    capabilities: frozenset[int] = frozenset()

    def prepare(self, users: SandboxUsers | None) -> None:
        pass

    def mount(self, users: SandboxUsers | None) -> str:
        sc.mount("tmpfs", self.mountpoint, "tmpfs", sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
                 "size=4k,mode=0555")
        return self.mountpoint


HelperRoot = ImageRoot | WritableRoot | EmptyRoot | LinkRoot


class HelperOutput:
    """What `work` writes to: one header (a JSON object), then payload bytes."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "wb", buffering=CHUNK)
        self.header_sent = False

    def header(self, **fields: Any) -> None:
        self._file.write((json.dumps({"ok": True, **fields}) + "\n").encode())
        self._file.flush()
        self.header_sent = True

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def fail(self, status: int, message: str) -> int:
        """Report an error; the exit code that goes with it (a payload already started cannot carry it)."""
        if self.header_sent:
            return EXIT_CUT
        self._file.write((json.dumps({"ok": False, "status": status, "error": message}) + "\n").encode())
        return 0

    def close(self) -> None:
        self._file.close()


Work = Callable[[HelperOutput], None]


def apply_syscall_filter() -> None:
    """The sandboxes' filter (Docker's default profile, seccomp.py), installed last, after no_new_privs.

    It was compiled in the engine before any helper forked (KeeperPool.start), so the child only installs it
    (~0.2 ms). Decided for the sandbox's capabilities, which lack CAP_DAC_READ_SEARCH, it refuses
    open_by_handle_at: the one door that capability, which the helper keeps to read 0600 image files, would
    open to host files by handle. It allows what a helper does from then on (read, getdents64, openat,
    fstat, mmap, the rt_sig* of grep's deadline, exit).
    """
    seccomp.apply(seccomp_program())


# -- the helper's side (a forked child; never returns) ----------------------------------------------------

def _helper_main(write_fd: int, root: HelperRoot, work: Work, limits: HelperLimits,  # pragma: no cover - forked
                 input_fd: int | None, users: SandboxUsers | None) -> NoReturn:
    code = 1
    try:
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        gc.disable()  # a collection could finalise an engine object whose fd number is now one of ours
        _quiet_signals()
        if users is not None:  # its fds, renumbered past INPUT_FD; closed once the helper has joined it
            users = users.renumbered(_settle_fds(write_fd, input_fd, users.fds))
        else:
            _settle_fds(write_fd, input_fd, [])
        out = HelperOutput(3)
        try:
            _enter_sandbox(root, limits, users)
            work(out)
            code = 0
        except EngineError as exc:
            code = out.fail(exc.status, str(exc)[:_MESSAGE_CHARS])
        except MemoryError:
            code = out.fail(422, f"too large for an inspect helper's {limits.memory_bytes >> 20} MiB of memory")
        except BrokenPipeError:
            code = 1
        except Exception as exc:  # noqa: BLE001 - reported to the engine, which answers a 500
            code = out.fail(500, f"inspect helper: {type(exc).__name__}: {exc}"[:_MESSAGE_CHARS])
        out.close()
    except BaseException:  # noqa: BLE001 - whatever happens, the child must not return into the engine
        pass
    os._exit(code)


def _quiet_signals() -> None:
    """The engine's signal plumbing is not ours: its wakeup fd number may be reused by our files."""
    try:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
    except ValueError:  # not forked from the main thread: no Python handlers to undo there
        pass


def _settle_fds(write_fd: int, input_fd: int | None, keep: list[int]) -> list[int]:
    """Keep only the pipe to the engine (as fd 3), the input, if any (as fd 4, INPUT_FD) and `keep` (as 5,
    6, ..., returned: the sandbox namespaces, closed before the work starts). 0-2 become a
    pipe nobody reads (non-blocking, so a stray write fails instead of hanging): not /dev/null, whose
    devtmpfs would let CAP_DAC_READ_SEARCH open any device node of the host through open_by_handle_at."""
    high = fcntl.fcntl(write_fd, fcntl.F_DUPFD, 100)  # away from 0-2, which the engine may have closed
    # The input through a read-only mount of its own: an extracting helper holds CAP_FOWNER and CAP_CHOWN,
    # which would otherwise let it fchmod/fchown the host file behind an fd opened read-only.
    high_input = fcntl.fcntl(reopen_read_only(input_fd), fcntl.F_DUPFD, 100) if input_fd is not None else None
    high_keep = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in keep]
    null_r, null_w = os.pipe()
    os.set_blocking(null_w, False)
    os.dup2(null_r, 0)
    os.dup2(null_w, 1)
    os.dup2(null_w, 2)
    os.dup2(high, 3)
    if high_input is not None:
        os.dup2(high_input, INPUT_FD)
    else:  # an engine fd at INPUT_FD must not survive below the kept ones
        try:
            os.close(INPUT_FD)
        except OSError:
            pass
    kept = [os.dup2(fd, INPUT_FD + 1 + i, inheritable=False) for i, fd in enumerate(high_keep)]
    sc.close_range(INPUT_FD + 1 + len(kept) if high_input is not None or kept else INPUT_FD)
    return kept


INPUT_FD = 4  # a helper's input (start_writable's or start_reading's input_fd), already open


class _NoImports:
    """First on sys.meta_path inside the helper: after pivot_root every path on sys.path is the image's, and
    a module found there would run as Python code. Everything a helper needs is imported before the fork."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        raise ImportError(f"{fullname}: nothing is imported inside an inspect helper (its files are the image's)")


def _enter_sandbox(root: HelperRoot, limits: HelperLimits, users: SandboxUsers | None) -> None:
    # gettext reads message catalogues lazily (strerror), and they would now be the image's; LC_CTYPE stays
    # (Python's text encoding follows it, and its codecs cannot be imported from here on).
    locale.setlocale(locale.LC_MESSAGES, "C")
    with open("/proc/self/statm", "rb") as fh:  # read while /proc is still the host's
        mapped = int(fh.read().split()[0]) * resource.getpagesize()
    # Below the engine in the scheduler: with 8 busy helpers on 2 cores, a helper at the engine's own
    # priority is what stretches a concurrent request's wait (bench_inspect's whoami under hostile load).
    os.setpriority(os.PRIO_PROCESS, 0, HELPER_NICE)
    # Now, while /proc/sys/kernel/cap_last_cap is the host's: after pivot_root that path is the image's
    # (no /proc is mounted for a helper), and a planted "1" would leave capabilities 2-40 in the set.
    last_cap = sc.last_capability()
    if users is None:
        sc.drop_bounding_capabilities(root.capabilities, last_cap)
    else:
        os.setgroups([])  # the engine's supplementary groups are host groups
        root.prepare(users)
    sc.unshare(sc.CLONE_NEWNS | sc.CLONE_NEWIPC | sc.CLONE_NEWUTS | sc.CLONE_NEWNET)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    mountpoint = root.mount(users)
    # pivot_root, not chroot: root can climb out of a chroot (measured: sandbox-runtime.md §1.2); after the
    # detach the host's tree is not in this mount namespace at all.
    os.chdir(mountpoint)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
    sys.meta_path.insert(0, _NoImports())  # type: ignore[arg-type]
    sys.path_importer_cache.clear()
    for limit, value in ((resource.RLIMIT_CPU, limits.cpu_seconds),
                         (resource.RLIMIT_AS, mapped + limits.memory_bytes),
                         (resource.RLIMIT_NOFILE, limits.open_files),
                         (resource.RLIMIT_FSIZE, limits.file_bytes), (resource.RLIMIT_CORE, 0),
                         (resource.RLIMIT_MEMLOCK, 0),
                         (resource.RLIMIT_MSGQUEUE, 0), (resource.RLIMIT_NPROC, 0)):
        resource.setrlimit(limit, (value, value))
    if users is None:
        become_unprivileged(HELPER_UID, HELPER_GID, root.capabilities)
    else:
        _become_sandbox_root(users, root.capabilities, last_cap)
        for fd in users.fds:
            os.close(fd)
    sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    apply_syscall_filter()


def _become_sandbox_root(users: SandboxUsers, keep: frozenset[int], last_cap: int) -> None:
    """Root of the sandboxes' user namespace (host uid BASE), holding `keep` in that namespace only.

    Every mount is made by now (in a mount namespace the host's user namespace owns, so nothing can be
    mounted or unmounted from here on). setns gives every capability in the new namespace and a full
    bounding set, so both are cut to `keep` after it. A capability held there acts on inodes whose owner
    and group the namespace maps (the idmapped image and layer: ids 0..65535), never on a host file, and
    not on open_by_handle_at, which asks for CAP_DAC_READ_SEARCH in the filesystem's owning namespace."""
    join(users.userns_fd)
    sc.drop_bounding_capabilities(keep, last_cap)
    set_capabilities(keep)
    sc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


# -- the engine's side ----------------------------------------------------------------------------------

class HelperProcess:
    """A running helper as the engine sees it: its pipe (read asynchronously) and its pidfd."""

    def __init__(self, pid: int, read_fd: int, lifetime: float, on_reaped: Callable[[HelperProcess], None]) -> None:
        self.pid = pid
        self._loop = asyncio.get_running_loop()
        self._read_fd: int | None = read_fd
        self._reader: asyncio.StreamReader | None = None
        self._transport: asyncio.ReadTransport | None = None
        self._exited: asyncio.Future[int] = self._loop.create_future()
        self._on_reaped = on_reaped
        self._pidfd = os.pidfd_open(pid)
        self._loop.add_reader(self._pidfd, self._reap)
        self._timer = self._loop.call_later(lifetime, self._expire)
        self.expired = False
        self.closed = False
        self.size: int | None = None  # the payload's length when the header announced it

    # lifecycle
    def _expire(self) -> None:
        self.expired = True
        self.kill()

    def kill(self) -> None:
        if not self._exited.done():
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _reap(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped by someone else (a waitpid(-1) elsewhere): it has exited
            pid, code = self.pid, -1
        if pid == 0:
            return
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._timer.cancel()
        if not self._exited.done():
            self._exited.set_result(code)
        self._on_reaped(self)

    async def exit_code(self) -> int:
        return await asyncio.shield(self._exited)

    def when_reaped(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the helper has exited and been reaped (at once if it has)."""
        self._exited.add_done_callback(lambda _exited: callback())

    def close(self) -> None:
        """Stop reading and kill the helper if it still runs; it is reaped when its pidfd says so."""
        if self.closed:
            return
        self.closed = True
        if self._transport is not None:
            self._transport.close()
        elif self._read_fd is not None:
            os.close(self._read_fd)
        self._read_fd = None
        self.kill()

    # reading
    async def _stream(self) -> asyncio.StreamReader:
        if self._reader is None:
            assert self._read_fd is not None, "helper closed"
            reader = asyncio.StreamReader(limit=HEADER_LIMIT)
            pipe = os.fdopen(self._read_fd, "rb", buffering=0)
            self._read_fd = None
            self._transport, _ = await self._loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), pipe)
            self._reader = reader
        return self._reader

    def _timeout(self, what: str, seconds: float) -> HelperTimeout:
        self.close()
        return HelperTimeout(f"the inspect helper {what} within {seconds:g} s and was stopped "
                             "(a very large tree or file in the image?)")

    async def header(self, deadline: float) -> dict[str, Any]:
        """The helper's first line; its error answer raised as the EngineError it names."""
        try:
            async with asyncio.timeout(deadline):
                line = await (await self._stream()).readline()
        except TimeoutError:
            raise self._timeout("did not answer", deadline) from None
        except ValueError:  # longer than HEADER_LIMIT
            self.close()
            raise HelperFailed("the inspect helper sent a malformed answer") from None
        if self.expired:
            raise self._timeout("did not answer", deadline)
        try:
            header = json.loads(line) if line.endswith(b"\n") else None
        except ValueError:
            header = None
        if not isinstance(header, dict):
            self.close()
            code = await self._exit_code_soon()
            raise HelperFailed(f"the inspect helper ended without an answer (exit status {code})")
        if header.get("ok") is not True:
            self.close()
            status = header.get("status")
            message = str(header.get("error") or "inspect failed")[:_MESSAGE_CHARS]
            if status not in _ANSWER_STATUSES:
                raise HelperFailed(message)
            raise {404: NotFound, 422: Unprocessable}.get(status, EngineError)(message)
        size = header.get("size")
        self.size = size if isinstance(size, int) and size >= 0 else None
        return header

    async def _exit_code_soon(self) -> int | str:
        try:
            async with asyncio.timeout(5):
                return await self.exit_code()
        except TimeoutError:
            return "unknown"

    async def chunks(self, idle: float) -> AsyncIterator[bytes]:
        """The payload as it comes; raises (cutting the response) if the helper stalls for `idle` seconds,
        outlives its lifetime or ends with an error. Closes the helper when done or abandoned."""
        received = 0
        try:
            reader = await self._stream()
            while True:
                try:
                    async with asyncio.timeout(idle):
                        data = await reader.read(CHUNK)
                except TimeoutError:
                    raise self._timeout("stalled", idle) from None
                if not data:
                    break
                received += len(data)
                yield data
            if received == self.size and not self.expired:
                return  # all announced bytes are here: no need to wait for the helper's exit (~0.7 ms)
            code = await self._exit_code_soon()
            if self.expired:
                raise HelperTimeout("the inspect helper ran out of time and was stopped; the payload is cut")
            if code != 0:
                raise HelperFailed(f"the inspect helper failed mid-answer (exit status {code}); the payload is cut")
        finally:
            self.close()

    async def read_all(self, limit: int, idle: float) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks(idle):
            size += len(chunk)
            if size > limit:
                raise EngineError(f"more than {limit >> 20} MiB: too large to collect (stream it instead)",
                                  status=422)
            parts.append(chunk)
        return b"".join(parts)


class HelperSet:
    """The engine's helpers: at most `max_live` at once (each may take a CPU and its memory budget; a
    request waits up to `slot_wait` s for a slot, then gets a 503), killed and awaited when the engine closes."""

    def __init__(self, max_live: int = MAX_HELPERS, slot_wait: float = SLOT_WAIT,
                 what: str = "inspect requests") -> None:
        # The engine's sandbox users (set by Engine.open): helpers run as the sandboxes' root. None: as
        # HELPER_UID with host capabilities (EngineConfig(sandbox_ids=None)).
        self.users: SandboxUsers | None = None
        self._live: set[HelperProcess] = set()
        self._max_live, self._slot_wait, self._what = max_live, slot_wait, what
        self._slots = asyncio.Semaphore(max_live)

    async def start(self, lowers: list[str], mountpoint: str, work: Work, limits: HelperLimits) -> HelperProcess:
        """A helper over an image's layers, read-only."""
        return await self._start(ImageRoot(lowers, mountpoint), work, limits, None)

    async def start_writable(self, directory: str, work: Work, limits: HelperLimits, *,
                             capabilities: frozenset[int], input_fd: int) -> HelperProcess:
        """A helper whose root is `directory`, writable, holding `capabilities` and reading `input_fd`
        (as INPUT_FD; the caller keeps and closes its own copy)."""
        return await self._start(WritableRoot(directory, capabilities), work, limits, input_fd)

    async def start_linking(self, directory: str, lowers: list[str], mountpoint: str, work: Work,
                            limits: HelperLimits, *, capabilities: frozenset[int]) -> HelperProcess:
        """A helper over a new layer (`/layer`, writable) and the layers below it (`/lower`, read-only)."""
        return await self._start(LinkRoot(directory, lowers, mountpoint, capabilities), work, limits, None)

    async def start_reading(self, mountpoint: str, work: Work, limits: HelperLimits, *,
                            input_fd: int) -> HelperProcess:
        """A helper with an empty read-only root and no capability, reading `input_fd` (as INPUT_FD, through
        a read-only mount of its own; the caller keeps and closes its own copy)."""
        return await self._start(EmptyRoot(mountpoint), work, limits, input_fd)

    async def _start(self, root: HelperRoot, work: Work, limits: HelperLimits, input_fd: int | None) -> HelperProcess:
        try:
            async with asyncio.timeout(self._slot_wait):
                await self._slots.acquire()
        except TimeoutError:
            raise EngineError(f"{self._max_live} {self._what} are already running; retry shortly",
                              status=503) from None
        try:
            read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
            try:
                pid = sc.fork_pid1()
            except BaseException:
                os.close(read_fd)
                os.close(write_fd)
                raise
        except BaseException:
            self._slots.release()
            raise
        if pid == 0:  # pragma: no cover - the helper
            _helper_main(write_fd, root, work, limits, input_fd, self.users)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        helper = HelperProcess(pid, read_fd, limits.lifetime, self._reaped)
        self._live.add(helper)
        return helper

    def _reaped(self, helper: HelperProcess) -> None:
        self._live.discard(helper)
        self._slots.release()

    def __len__(self) -> int:
        return len(self._live)

    async def close(self) -> None:
        helpers = list(self._live)
        for helper in helpers:
            helper.close()
        await asyncio.gather(*(helper.exit_code() for helper in helpers), return_exceptions=True)
