"""A read-only copy of an open file descriptor, for handing a host file to a confined helper.

An fd opened O_RDONLY still lets its holder fchmod and fchown the file (those check ownership and
capabilities, not the open mode), and an extracting helper keeps CAP_FOWNER and CAP_CHOWN: with code
running in it, it could make the user's tarball world-writable or give it away. So the file is reopened
through a detached, read-only bind mount of itself (open_tree + mount_setattr, Linux 5.12+): on that fd,
fchmod, fchown, write and ftruncate all fail with EROFS whatever capabilities the holder has. Called in the
forked child while it is still root with the host's /proc (it needs CAP_SYS_ADMIN and /proc/self/fd).
"""

from __future__ import annotations

import ctypes
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_OPEN_TREE = {"x86_64": 428, "aarch64": 428}.get(platform.machine(), 428)
_SYS_MOUNT_SETATTR = {"x86_64": 442, "aarch64": 442}.get(platform.machine(), 442)
_OPEN_TREE_CLONE = 1
_OPEN_TREE_CLOEXEC = os.O_CLOEXEC
_AT_EMPTY_PATH = 0x1000
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID, _MOUNT_ATTR_NODEV, _MOUNT_ATTR_NOEXEC = 0x1, 0x2, 0x4, 0x8


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def reopen_read_only(fd: int) -> int:
    """A new O_RDONLY fd on the same file, through a read-only mount of its own (`fd` stays open)."""
    tree = _check(_libc.syscall(_SYS_OPEN_TREE, fd, b"", _OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC | _AT_EMPTY_PATH),
                  "open_tree")
    try:
        attr = _MountAttr(_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV | _MOUNT_ATTR_NOEXEC, 0, 0, 0)
        _check(_libc.syscall(_SYS_MOUNT_SETATTR, tree, b"", _AT_EMPTY_PATH, ctypes.byref(attr),
                             ctypes.sizeof(attr)), "mount_setattr")
        return os.open(f"/proc/self/fd/{tree}", os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
    finally:
        os.close(tree)
