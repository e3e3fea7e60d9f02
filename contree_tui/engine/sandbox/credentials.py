"""Capabilities through ctypes (Python has setresuid/setgroups, not capget/capset): read and set a process's
capability sets, so a sandboxed helper can run as an unprivileged uid that keeps exactly the capabilities
it needs."""

from __future__ import annotations

import ctypes
import os

from contree_tui.engine.sandbox.syscalls import prctl

_libc = ctypes.CDLL(None, use_errno=True)

CAP_CHOWN = 0
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_FOWNER = 3
CAP_FSETID = 4
CAP_SETFCAP = 31
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _mask(caps: frozenset[int]) -> int:
    mask = 0
    for cap in caps:
        mask |= 1 << cap
    return mask


def set_capabilities(caps: frozenset[int]) -> None:
    """Effective and permitted become exactly `caps`, inheritable empty (capset(2), version 3)."""
    mask = _mask(caps)
    data = (_Data * 2)(_Data(mask & 0xFFFFFFFF, mask & 0xFFFFFFFF, 0), _Data(mask >> 32, mask >> 32, 0))
    if _libc.capset(ctypes.byref(_Header(_LINUX_CAPABILITY_VERSION_3, 0)), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def raise_effective() -> None:
    """Effective becomes permitted (capset(2)): after a change of fsuid from 0, which clears the filesystem
    capabilities (DAC_OVERRIDE, CHOWN, FOWNER, ...) from the effective set and leaves permitted alone."""
    _, permitted, inheritable = capabilities()
    data = (_Data * 2)(_Data(permitted & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF),
                       _Data(permitted >> 32, permitted >> 32, inheritable >> 32))
    if _libc.capset(ctypes.byref(_Header(_LINUX_CAPABILITY_VERSION_3, 0)), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def capabilities() -> tuple[int, int, int]:
    """This process's (effective, permitted, inheritable) masks."""
    data = (_Data * 2)()
    if _libc.capget(ctypes.byref(_Header(_LINUX_CAPABILITY_VERSION_3, 0)), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capget: {os.strerror(err)}")
    low, high = data[0], data[1]
    return (low.effective | high.effective << 32, low.permitted | high.permitted << 32,
            low.inheritable | high.inheritable << 32)


def bounding_set() -> int:
    """The capability bounding set as a mask (PR_CAPBSET_READ for each capability the kernel knows)."""
    mask = 0
    for cap in range(64):
        result = _libc.prctl(PR_CAPBSET_READ, ctypes.c_ulong(cap), 0, 0, 0)
        if result < 0:
            break
        mask |= result << cap
    return mask


def no_new_privs() -> bool:
    return _libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1


def become_unprivileged(uid: int, gid: int, keep: frozenset[int]) -> None:
    """Switch to uid/gid (no supplementary groups) keeping only `keep` of root's capabilities.

    Call drop_bounding_capabilities(keep) before, while /proc is the host's (it reads cap_last_cap) and
    CAP_SETPCAP is still held. KEEPCAPS carries the permitted set across setresuid, which would otherwise
    empty it.
    """
    prctl(PR_SET_KEEPCAPS, 1)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    set_capabilities(keep)
    prctl(PR_SET_KEEPCAPS, 0)
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
