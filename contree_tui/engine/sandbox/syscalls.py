"""Thin ctypes wrappers for the Linux calls Python 3.11 lacks (unshare, mount, the new mount API,
pivot_root, close_range). Every wrapper raises OSError with the call's name, so a setup failure inside
a sandbox reads as e.g. "fsconfig lowerdir+: No such file or directory"."""

from __future__ import annotations

import ctypes
import os
import platform

from contree_tui.engine.privilege import running_rootless

# Most of these run in a forked, single-threaded sandbox child, so CDLL releasing the GIL is harmless.
_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

# Syscall numbers of the new mount API are shared by every architecture (they were added after the
# tables were unified); pivot_root and close_range are not.
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432
_SYS_MOVE_MOUNT = 429
_SYS_CLOSE_RANGE = 436
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(platform.machine(), 155)

FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _b(value: str | None) -> bytes | None:
    return value.encode() if value is not None else None


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def fork_pid1() -> int:
    """os.fork(), except that the child is pid 1 of a new pid namespace.

    unshare(CLONE_NEWPID) only changes where our *next* child goes; setns back to our own namespace right
    after, so this call and every later fork stay ordinary ones. os.fork's own bookkeeping (at-fork
    handlers, the interpreter's locks, glibc's malloc) is kept, which a raw clone() would skip.
    """
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    pid = -1
    try:
        unshare(CLONE_NEWPID)
        pid = os.fork()
    finally:
        if pid != 0:
            setns(own, CLONE_NEWPID)
            os.close(own)
    return pid


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)), f"mount {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old)), "pivot_root")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def prctl(option: int, arg: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), "prctl")


PR_SET_NAME = 15


def set_process_name(name: str) -> None:
    """The name ps, top and perf show (15 bytes): tells the factory, keepers and pid 1s from the engine."""
    _libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


CLOSE_RANGE_CLOEXEC = 1 << 2
PR_CAPBSET_DROP = 24


def close_range(first: int, last: int = 0xFFFFFFFF, *, cloexec: bool = False) -> None:
    """Close (or mark close-on-exec) every fd in [first, last]; falls back to a loop on old kernels."""
    flags = CLOSE_RANGE_CLOEXEC if cloexec else 0
    if _libc.syscall(_SYS_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags)) < 0:
        if cloexec:
            for fd in range(first, min(last, 65535) + 1):
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass
        else:
            os.closerange(first, min(last, 65535) + 1)


def last_capability() -> int:
    """The highest capability the kernel knows (read it while /proc is the host's)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            return int(fh.read())
    except OSError:
        return 40


def drop_bounding_capabilities(keep: frozenset[int], last: int | None = None) -> None:
    """Remove every capability not in `keep` from the bounding set, so an exec'd root process never
    regains CAP_SYS_ADMIN, CAP_MKNOD and the like (with them, root could mount the host's disk).
    `last`: last_capability(), read earlier by a caller whose /proc is no longer the host's."""
    for cap in range((last_capability() if last is None else last) + 1):
        if cap not in keep:
            _check(_libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0), f"drop capability {cap}")


MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8


def overlay_mount(lowers: list[str], upper: str | None, work: str | None, target: str,
                  *, userxattr: bool | None = None, attrs: int = MOUNT_ATTR_NODEV) -> None:
    """Mount an overlay through fsopen/fsconfig (one `lowerdir+` per layer, topmost first).

    The legacy mount(2) option string stops at one page: past ~140 absolute layer paths it is silently
    truncated into a read-only mount with fewer layers, so it is never used here.

    userxattr (None: when the engine runs rootless): overlay's metadata as `user.overlay.*`. In a user
    namespace `trusted.*` cannot be set: without it the mount succeeds, but removing a lower directory
    fails with EIO (sandbox-runtime.md §1.4).
    """
    if userxattr is None:
        userxattr = running_rootless()
    fd = _check(_libc.syscall(_SYS_FSOPEN, b"overlay", 0), "fsopen overlay")
    try:
        def set_string(key: str, value: str) -> None:
            _check(_libc.syscall(_SYS_FSCONFIG, fd, FSCONFIG_SET_STRING, key.encode(), value.encode(), 0),
                   f"fsconfig {key}={value}")

        for lower in lowers:
            set_string("lowerdir+", lower)
        if upper is not None and work is not None:
            set_string("upperdir", upper)
            set_string("workdir", work)
            # volatile: no syncfs of the upper fs when the sandbox's mount namespace goes away (that sync
            # sat on every run's critical path). An upper is never mounted again: it is committed by rename
            # and from then on only ever a lower, so the "volatile upper after a crash" check never applies.
            _check(_libc.syscall(_SYS_FSCONFIG, fd, FSCONFIG_SET_FLAG, b"volatile", None, 0), "fsconfig volatile")
        # Each upper must be a self-contained diff: no redirects, no metacopy-only entries, no index.
        # With userxattr "off" is refused ("conflicting options: userxattr,redirect_dir=follow": off still
        # follows a lower's redirects while the module's redirect_always_follow is on); nofollow ignores them.
        set_string("redirect_dir", "nofollow" if userxattr else "off")
        set_string("metacopy", "off")
        set_string("index", "off")
        if userxattr:
            _check(_libc.syscall(_SYS_FSCONFIG, fd, FSCONFIG_SET_FLAG, b"userxattr", None, 0), "fsconfig userxattr")
        _check(_libc.syscall(_SYS_FSCONFIG, fd, FSCONFIG_CMD_CREATE, None, None, 0), "fsconfig create overlay")
        # nodev by default: a device node shipped in an image must never reach a host device.
        mfd = _check(_libc.syscall(_SYS_FSMOUNT, fd, 0, attrs), "fsmount")
        try:
            # Overlay falls back to read-only, and succeeds, when it cannot make its work dir (e.g. fsuid 0
            # on an idmapped upper that does not map it: EOVERFLOW, only in dmesg). A run must not start so.
            if upper is not None and not attrs & MOUNT_ATTR_RDONLY and os.fstatvfs(mfd).f_flag & os.ST_RDONLY:
                raise OSError(30, f"overlay on {target} came up read-only (its work dir {work} could not be made)")
            _check(_libc.syscall(_SYS_MOVE_MOUNT, mfd, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH),
                   f"move_mount {target}")
        finally:
            os.close(mfd)
    finally:
        os.close(fd)
