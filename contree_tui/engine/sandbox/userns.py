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
"""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass

from contree_tui.engine.sandbox import credentials
from contree_tui.engine.sandbox import syscalls as sc
from contree_tui.sandbox_ids import IdRange

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


@dataclass(frozen=True)
class SandboxUsers:
    """The engine's sandbox user namespace and its idmapped mount namespace, held open by fd."""

    ids: SandboxIds
    userns_fd: int
    mntns_fd: int
    bound_root: str | None = None  # the state dir we bound onto itself (share_mounts), unbound by close

    def to_env(self) -> str:
        return f"{self.userns_fd}:{self.mntns_fd}:{self.ids.uid_base}:{self.ids.gid_base}:{self.ids.count}"

    @classmethod
    def from_env(cls, value: str) -> SandboxUsers:
        userns_fd, mntns_fd, uid_base, gid_base, count = (int(part) for part in value.split(":"))
        return cls(SandboxIds(uid_base, gid_base, count), userns_fd, mntns_fd)

    @property
    def fds(self) -> list[int]:
        return [self.userns_fd, self.mntns_fd]

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
    """
    for base in (ids.uid_base, ids.gid_base):
        if not 0 < base <= 0xFFFFFFFF - ids.count:  # a base of 0 would make the sandbox's root host root
            raise OSError(errno.EINVAL, f"sandbox id base {base} is not in 1..{0xFFFFFFFF - ids.count}")
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


def _new_userns(ids: SandboxIds) -> int:
    pid, release = _in_child(sc.unshare, sc.CLONE_NEWUSER)
    try:
        # setgroups stays "allow" (written by root, the maps need no "deny"): the sandbox's pid 1 calls
        # setgroups(0, NULL) when it drops to the run's ids, as before.
        with open(f"/proc/{pid}/uid_map", "w") as fh:
            fh.write(ids.map_line(ids.uid_base))
        with open(f"/proc/{pid}/gid_map", "w") as fh:
            fh.write(ids.map_line(ids.gid_base))
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
    """
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
