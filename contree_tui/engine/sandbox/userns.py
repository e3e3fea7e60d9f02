"""Sandbox users: uid 0 in a sandbox is not uid 0 on the host.

Every sandbox of an engine runs in one user namespace whose ids 0..65535 are host ids BASE..BASE+65535
(as podman --userns=auto and Docker's userns-remap do): a sandbox's root owns nothing on the host, and its
capabilities (bounded as before) hold only inside that namespace. Layers on disk keep canonical owners
(root's files are uid 0 on disk), so commits stay renames and import, squash, inspect and every existing
layer are unchanged; the translation is done by idmapped mounts (Linux >= 5.12 for ext4/xfs/btrfs; tmpfs
>= 6.3), which show on-disk uid u as host uid BASE+u:

- `open_sandbox_users` (once per engine) creates the user namespace (a forked child unshares it, the engine
  writes its maps `0 BASE 65536`, keeps an fd to it) and a mount namespace in which the state dir's
  layers, scaffold and runs are each covered by an idmapped view of themselves. The engine itself keeps
  the canonical host view, for commits, squashes and clean-up.
- Each keeper, at birth (off a run's critical path), joins that mount namespace and sets its fsuid/fsgid
  to BASE (`enter_keeper`): overlay, mounted by those creds, creates its work dir and every copy-up through
  the idmapped upper as on-disk root (with fsuid 0, unmapped there, overlay cannot create work/work
  (EOVERFLOW) and silently mounts read-only — syscalls.overlay_mount refuses that). Scratch dirs and
  injected files are made with the same fsuid, an injected file owned by u is chowned to BASE+u.
- After pivot_root, the sandbox's pid 1 joins the user namespace (`join`), becomes its root, and only
  then drops the capability bounding set (setns resets it to full), installs the syscall filter (allowed
  without no_new_privs by CAP_SYS_ADMIN in the new namespace) and changes to the run's uid/gid. A
  process exec'd into a running sandbox (nsenter.py) joins it last, after the others.

The base: /etc/subuid and /etc/subgid's `contree-tui` entries when present (count >= 65536), else
1,000,000,000: above login.defs' SUB_UID_MAX (600,100,000) and UID_MAX (60,000), so neither useradd's
users nor its subordinate ranges can be given these ids. EngineConfig.sandbox_ids overrides it.

Rootless (privilege.running_rootless(): the engine is uid 0 of a user's own namespace, 0 -> the user, 1..N
-> their /etc/subuid range) the sandboxes' namespace maps 0..count-1 onto the engine's own 0..count-1
(base 0: the user, not host root; count = min(65536, the ids the engine's namespace maps)), and nothing is
idmapped: the kernel refuses idmapped mounts of the host's ext4 there (they need CAP_SYS_ADMIN in the
filesystem's user namespace, the initial one), and they are not needed, since on-disk ids already are the
engine's ids. Keepers and helpers stay in the engine's mount namespace (mntns_fd -1) with fsuid 0. The
nested namespace is kept all the same: a sandbox's root holds its capabilities in it only, not over the
engine's mount and network namespaces, which the engine's namespace owns.
"""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass

from contree_tui.engine import privilege
from contree_tui.engine.sandbox import credentials
from contree_tui.engine.sandbox import syscalls as sc
from contree_tui.sandbox_ids import ID_COUNT, IdRange

ENV_NAME = "CONTREE_TUI_SANDBOX_USERS"  # how the factory is handed the namespaces (keepers.py)

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442
_OPEN_TREE_CLONE = 1
_AT_EMPTY_PATH = 0x1000
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_IDMAP = 0x00100000
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MS_SLAVE = 1 << 19
_MS_SHARED = 1 << 20


@dataclass(frozen=True)
class SandboxIds(IdRange):
    """Sandbox id i is host uid uid_base+i and host gid gid_base+i, for i < count (contree_tui/sandbox_ids.py)."""

    def map_line(self, base: int) -> str:
        return f"0 {base} {self.count}\n"

    @classmethod
    def for_engine(cls) -> SandboxIds:
        """EngineConfig's default: the engine's own ids rootless (rootless()), else from_host()."""
        return cls.rootless() if privilege.running_rootless() else cls.from_host()

    @classmethod
    def rootless(cls) -> SandboxIds:
        """The engine's own ids 0..count-1: count is what both its uid and gid maps hold from 0, at most 65536
        (1 + the user's subordinate range; with a short range, image files owning more are refused by name)."""
        count = min(ID_COUNT, privilege.mapped_id_count(), privilege.mapped_id_count("/proc/self/gid_map"))
        return cls(0, 0, max(1, count))


@dataclass(frozen=True)
class SandboxUsers:
    """The engine's sandbox user namespace and its idmapped mount namespace, held open by fd."""

    ids: SandboxIds
    userns_fd: int
    mntns_fd: int  # -1 rootless: nothing is idmapped, keepers and helpers stay in the engine's mount namespace
    bound_root: str | None = None  # the state dir we bound onto itself (share_mounts), unbound by close

    def to_env(self) -> str:
        return f"{self.userns_fd}:{self.mntns_fd}:{self.ids.uid_base}:{self.ids.gid_base}:{self.ids.count}"

    @classmethod
    def from_env(cls, value: str) -> SandboxUsers:
        userns_fd, mntns_fd, uid_base, gid_base, count = (int(part) for part in value.split(":"))
        return cls(SandboxIds(uid_base, gid_base, count), userns_fd, mntns_fd)

    @property
    def idmapped(self) -> bool:
        """Layers, scaffold and runs are seen through idmapped mounts (root mode); rootless, as they are."""
        return self.mntns_fd >= 0

    @property
    def fds(self) -> list[int]:
        return [self.userns_fd, self.mntns_fd] if self.idmapped else [self.userns_fd]

    def renumbered(self, fds: list[int]) -> SandboxUsers:
        """The same namespaces at `fds` (in `fds`' order), with no bind of ours to undo."""
        return SandboxUsers(self.ids, fds[0], fds[1] if self.idmapped else -1)

    def native_arg(self) -> str:
        """keeper.c's option: -uUSERNS_FD:MNTNS_FD:UID_BASE:GID_BASE."""
        return f"-u{self.userns_fd}:{self.mntns_fd}:{self.ids.uid_base}:{self.ids.gid_base}"

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        if self.bound_root is not None:
            try:
                sc.umount2(self.bound_root, sc.MNT_DETACH)
            except OSError:
                pass


def open_sandbox_users(ids: SandboxIds, idmapped_dirs: list[str], shared_root: str | None = None) -> SandboxUsers:
    """Create the user namespace and the mount namespace with `idmapped_dirs` idmapped over themselves.

    With `shared_root` (the state dir, holding every idmapped dir), what the engine later mounts under it in
    the host's mount namespace (a disposable run's tmpfs upper, layer_cap.py) appears in the keepers' too,
    as it is (not idmapped: nothing on it is committed): the state dir is made a shared mount (bound onto
    itself unless it is a mount point already), and the keepers' namespace receives its mounts as a slave.
    It is one mount, so commits stay renames (a bind of runs/ alone would make them EXDEV).

    Done by two short-lived forked children (the engine may have threads; unshare needs a single-threaded
    caller); the namespaces live on through the two fds. Raises OSError if the kernel or the filesystem
    cannot (idmapped mounts need Linux >= 5.12 and a filesystem that supports them).

    Rootless, only the user namespace is made (see the module doc): `idmapped_dirs` and `shared_root` are
    not used, and base 0 is allowed (it is the user who started the engine, not host root).
    """
    rootless = privilege.running_rootless()
    lowest = 0 if rootless else 1
    for base in (ids.uid_base, ids.gid_base):
        if not lowest <= base <= 0xFFFFFFFF - ids.count:  # as root, a base of 0 would make the sandbox's root host root
            raise OSError(errno.EINVAL, f"sandbox id base {base} is not in {lowest}..{0xFFFFFFFF - ids.count}")
    if rootless:
        require_own_pid_namespace()
        return SandboxUsers(ids, _new_userns(ids), -1)
    bound = _share_mounts(shared_root) if shared_root is not None else None
    try:
        userns_fd = _new_userns(ids)
        try:
            mntns_fd = _idmapped_mount_namespace(userns_fd, idmapped_dirs)
        except BaseException:
            os.close(userns_fd)
            raise
    except BaseException:
        if bound is not None:
            sc.umount2(bound, sc.MNT_DETACH)
        raise
    return SandboxUsers(ids, userns_fd, mntns_fd, bound)


def require_own_pid_namespace() -> None:
    """Rootless, the engine must run in a pid namespace its own user namespace owns, with a /proc of it.

    Every keeper and helper is born pid 1 of a new pid namespace (syscalls.fork_pid1): unshare(CLONE_NEWPID),
    fork, then setns back to the engine's own pid namespace, which needs CAP_SYS_ADMIN in the user namespace
    owning it: refused (EPERM) for the host's initial one, after which nothing can be started. And pids the
    engine gets from fork are looked up in /proc (/proc/PID/uid_map, /proc/PID/ns/...), so its /proc must be
    that namespace's. Raises OSError saying which is missing."""
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(own, sc.CLONE_NEWPID)  # a no-op where allowed: the namespace for children stays ours
    except OSError:
        raise OSError(errno.EPERM, "the engine is not in a pid namespace of its own user namespace (the rootless "
                                   "entry enters one: pid_namespace.enter_own_pid_namespace)") from None
    finally:
        os.close(own)
    if int(os.readlink("/proc/self")) != os.getpid():
        raise OSError(errno.EINVAL, "the engine's /proc is not its pid namespace's (mount a new proc there)")


def _mounted_at(path: str) -> list[str]:
    """The root (within its filesystem) of each mount at `path`: "/" for a filesystem's own, a subdir for a bind."""
    escaped = path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011").replace("\n", "\\012")
    with open("/proc/self/mountinfo") as fh:
        return [fields[3] for fields in (line.split() for line in fh) if fields[4] == escaped]


def _share_mounts(root: str) -> str | None:
    """Make `root` a shared mount; returns it if it is our bind of it onto itself (close unbinds it)."""
    mounts = _mounted_at(root)
    if not mounts:
        sc.mount(root, root, None, sc.MS_BIND)
    elif mounts[-1] == "/":  # a filesystem of its own: shared as it is, and never unmounted by us
        sc.mount(None, root, None, _MS_SHARED)
        return None
    # else the bind a crashed engine left: reused, and unbound at close
    sc.mount(None, root, None, _MS_SHARED)
    return root


def _in_child(work: object, *args: object) -> tuple[int, int]:
    """Fork a child that runs work(*args), reports on a pipe, then waits until the parent lets it go.
    Returns (pid, release fd); raises the child's error."""
    ready_r, ready_w = os.pipe()
    release_r, release_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - forked child
        code = 0
        try:
            os.close(ready_r)
            os.close(release_w)
            work(*args)  # type: ignore[operator]
            os.write(ready_w, b"ok")
            os.read(release_r, 1)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            try:
                os.write(ready_w, f"{exc}".encode()[:4000] or b"failed")
            except OSError:
                pass
            code = 1
        os._exit(code)
    os.close(ready_w)
    os.close(release_r)
    try:
        answer = os.read(ready_r, 4096)
    finally:
        os.close(ready_r)
    if answer != b"ok":
        os.close(release_w)
        os.waitpid(pid, 0)
        raise OSError(f"sandbox user namespace: {answer.decode(errors='replace') or 'the helper died'}")
    return pid, release_w


def _let_go(pid: int, release_w: int) -> None:
    os.close(release_w)
    os.waitpid(pid, 0)


def identity_map(count: int, parent_map: str) -> str:
    """The lines mapping 0..count-1 onto the same ids of the parent namespace, one per line of the parent's
    map they fall in: the kernel wants each line inside one line of the parent's (rootless, `0 0 65536`
    spans the user's own `0 1001 1` and their range's `1 100000 65535`, and is refused with EPERM)."""
    lines = []
    for inside, _outside, length in sorted(privilege.uid_map(parent_map)):
        first, last = max(inside, 0), min(inside + length, count)
        if first < last:
            lines.append(f"{first} {first} {last - first}\n")
    return "".join(lines)


def _new_userns(ids: SandboxIds) -> int:
    pid, release = _in_child(sc.unshare, sc.CLONE_NEWUSER)
    rootless = privilege.running_rootless()
    try:
        # setgroups stays "allow" (written by root, the maps need no "deny"): the sandbox's pid 1 calls
        # setgroups(0, NULL) when it drops to the run's ids, as before.
        with open(f"/proc/{pid}/uid_map", "w") as fh:
            fh.write(identity_map(ids.count, "/proc/self/uid_map") if rootless else ids.map_line(ids.uid_base))
        with open(f"/proc/{pid}/gid_map", "w") as fh:
            fh.write(identity_map(ids.count, "/proc/self/gid_map") if rootless else ids.map_line(ids.gid_base))
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        _let_go(pid, release)


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def idmap_over_itself(path: str, userns_fd: int, attrs: int = 0, target: str | None = None) -> None:
    """Cover `path` (or `target`) with a view of `path` in which on-disk id u is the user namespace's id u
    (and the mount attributes `attrs`, MOUNT_ATTR_NOSUID and the like, set on it)."""
    tree = _check(_libc.syscall(_SYS_OPEN_TREE, sc.AT_FDCWD, path.encode(), _OPEN_TREE_CLONE | os.O_CLOEXEC),
                  f"open_tree {path}")
    try:
        attr = _MountAttr(_MOUNT_ATTR_IDMAP | attrs, 0, 0, userns_fd)
        _check(_libc.syscall(_SYS_MOUNT_SETATTR, tree, b"", _AT_EMPTY_PATH, ctypes.byref(attr),
                             ctypes.sizeof(attr)), f"idmapped mount of {path}")
        _check(_libc.syscall(_SYS_MOVE_MOUNT, tree, b"", sc.AT_FDCWD, (target or path).encode(),
                             _MOVE_MOUNT_F_EMPTY_PATH), f"move_mount {target or path}")
    finally:
        os.close(tree)


def _idmap_dirs(userns_fd: int, dirs: list[str]) -> None:
    sc.unshare(sc.CLONE_NEWNS)
    # Nothing here propagates back to the host. Where the host's mounts are shared (systemd's default) its
    # unmounts propagate here; a private copy would keep every filesystem mounted at engine start busy for
    # the engine's lifetime. (This VM's / is private: an unmount there stays held here until engine stop.)
    sc.mount(None, "/", None, sc.MS_REC | _MS_SLAVE)
    for path in dirs:
        idmap_over_itself(path, userns_fd)


def _idmapped_mount_namespace(userns_fd: int, dirs: list[str]) -> int:
    pid, release = _in_child(_idmap_dirs, userns_fd, dirs)
    try:
        return os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        _let_go(pid, release)


# -- in keepers -------------------------------------------------------------------------------------------

def enter_keeper(users: SandboxUsers) -> None:
    """A keeper's first step (before its run): the idmapped mount namespace, fsuid/fsgid BASE.

    A change of fsuid from 0 clears the filesystem capabilities from the effective set (DAC_OVERRIDE,
    CHOWN, FOWNER, ...); they are raised again from the permitted set, which it leaves alone.
    Rootless nothing to do: no idmapped views, and fsuid 0 is the sandboxes' root already (base 0).
    """
    if not users.idmapped:
        return
    sc.setns(users.mntns_fd, sc.CLONE_NEWNS)
    _libc.setfsgid(users.ids.gid_base)
    _libc.setfsuid(users.ids.uid_base)
    credentials.raise_effective()


UNPRIVILEGED_PORT_START = "/proc/sys/net/ipv4/ip_unprivileged_port_start"


def allow_low_ports() -> None:
    """In a sandbox's own network namespace, let any of its ids bind ports below 1024 (Docker sets the same
    sysctl in every container's). CAP_NET_BIND_SERVICE would have to hold in the namespace's owner, the
    host's user namespace, and the sandbox's root has it in its own only: `nc -l -p 80` failed with EACCES.
    Called before /proc/sys becomes read-only; /proc/sys/net is the caller's network namespace's, and a run
    is never in the host's (unshared when offline, pasta's slot when online: engine.py refuses the rest)."""
    with open(UNPRIVILEGED_PORT_START, "w") as fh:
        fh.write("0")


def join(userns_fd: int) -> None:
    """Join the sandbox user namespace as its root (host uid BASE). Every capability of the process then
    holds in that namespace only, and the bounding set is full again: drop it after this."""
    sc.setns(userns_fd, sc.CLONE_NEWUSER)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
