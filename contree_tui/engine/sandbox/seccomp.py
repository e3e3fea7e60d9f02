"""The sandbox's syscall filter: Docker's default seccomp profile, compiled once into classic BPF.

`seccomp_default.json` is moby/profiles' seccomp/default.json byte for byte (last changed in commit 3c28324,
May 2026; git blob ea5a494; Apache-2.0), so it can be diffed against upstream. `rules` translates that
repository's `setupSeccomp` (seccomp_linux.go) line by line: a rule's `includes`/`excludes` are decided by
the native architecture, the running kernel and the capabilities the sandbox keeps in its bounding set
(launch.KEPT_CAPABILITIES: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
NET_BIND_SERVICE, SYS_CHROOT, SETFCAP). With those, of Docker's capability-conditional rules only `chroot`
(CAP_SYS_CHROOT) applies; the CAP_SYS_ADMIN group (mount, umount2, unshare, setns, bpf, fsopen, ...) does
not, so clone is allowed only without namespace flags, clone3 fails with ENOSYS (libc then falls back to
clone, whose flags a filter can see), `socket` refuses AF_ALG and AF_VSOCK and `personality` takes Docker's
five values. add_key, keyctl and request_key are in no rule: the kernel keyring is not namespaced, so they
fail with the default EPERM like every other unlisted syscall (io_uring, userfaultfd, kexec, bpf, ...).

One deliberate difference, stricter than Docker: only the native architecture is allowed (Docker's archMap
adds x86 and x32 to x86_64). A 32-bit syscall (int 0x80, an i386 binary) kills the process with SIGSYS: the
compat entry points are a surface of their own, and the kernel prepares the filter's action cache per
architecture, so installing it took 350 us with i386 and 150 us without (bench/bench_seccomp.py; 1257 vs
421 BPF instructions), on every run's critical path. SUB_ARCHITECTURES = True restores Docker's list.

libseccomp (libseccomp.so.2, on every Debian: apt and systemd link it) is loaded through ctypes and only to
compile (~5 ms), once per process: the keepers merely install the finished program (`apply`, or keeper.c
with the program built into it, see native.py). Like runc, syscalls that the installed libseccomp cannot
name are left out, and every syscall numbered above the highest one the filter knows fails with ENOSYS
rather than EPERM, so a newer libc's probe of a newer syscall falls back to the old one (runc's "enosys"
stub).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import json
import os
import platform
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROFILE = Path(__file__).with_name("seccomp_default.json")
SUB_ARCHITECTURES = False  # the archMap's subArchitectures (x86, x32 on x86_64): see above

# capability number → name, as Docker's profile spells them (linux/capability.h)
CAPABILITY_NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

# platform.machine() → the GOARCH-derived name the profile's includes/excludes use (seccomp_linux.go goToNative)
_PROFILE_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "x86", "ppc64le": "ppc64le",
                 "s390x": "s390x", "riscv64": "riscv64", "loongarch64": "loongarch64"}

# libseccomp actions and comparison operators (seccomp.h); an action's low 16 bits carry the errno
ACT_ALLOW = 0x7FFF0000
ACT_ERRNO = 0x00050000
ACT_KILL_PROCESS = 0x80000000
_COMPARE = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
            "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
_FLTATR_ACT_BADARCH = 2
# 2: a binary tree of syscall numbers (libseccomp >= 2.5) instead of a linear list: installing the filter
# (the kernel's per-syscall action cache walks it) took 160 us instead of 370 us here
_FLTATR_CTL_OPTIMIZE = 8
_NR_SCMP_ERROR = -1
_X32_SYSCALL_BIT = 0x40000000
_AUDIT_ARCH_X86_64 = 0xC000003E
_SCMP_ARCH_X32 = 0x4000003E  # libseccomp's own token; the kernel reports x32 as x86_64 with the bit above

# prctl(2)
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


class SeccompUnavailable(RuntimeError):
    """libseccomp cannot be loaded or refused the profile: no sandbox may start without its filter."""


@dataclass(frozen=True)
class Rule:
    names: tuple[str, ...]
    action: int  # ACT_ALLOW or ACT_ERRNO | errno
    args: tuple[tuple[int, int, int, int], ...] = ()  # (index, operator, value, valueTwo)


def profile_arch() -> str:
    return _PROFILE_ARCH.get(platform.machine(), platform.machine())


def kernel_version() -> tuple[int, int]:
    major, minor = os.uname().release.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def _kernel_at_least(wanted: str, kernel: tuple[int, int]) -> bool:
    major, minor = (int(part) for part in wanted.split(".")[:2])
    return kernel >= (major, minor)


def _action(name: str, errno_ret: int | None, default_errno: int) -> int:
    if name == "SCMP_ACT_ALLOW":
        return ACT_ALLOW
    if name == "SCMP_ACT_ERRNO":
        return ACT_ERRNO | ((default_errno if errno_ret is None else errno_ret) & 0xFFFF)
    raise SeccompUnavailable(f"seccomp profile: action {name} is not supported here")


def rules(profile: dict, arch: str, caps: set[str], kernel: tuple[int, int]) -> list[Rule]:
    """The profile's rules that apply to `arch`, this `kernel` and a bounding set of `caps` (setupSeccomp)."""
    default_errno = profile.get("defaultErrnoRet", errno.EPERM)
    chosen = []
    for call in profile["syscalls"]:
        excludes, includes = call.get("excludes") or {}, call.get("includes") or {}
        if arch in (excludes.get("arches") or ()):
            continue
        if any(cap in caps for cap in excludes.get("caps") or ()):
            continue
        if excludes.get("minKernel") and _kernel_at_least(excludes["minKernel"], kernel):
            continue
        if includes.get("arches") and arch not in includes["arches"]:
            continue
        if not all(cap in caps for cap in includes.get("caps") or ()):
            continue
        if includes.get("minKernel") and not _kernel_at_least(includes["minKernel"], kernel):
            continue
        names = tuple(call["names"]) if call.get("names") else (call["name"],)
        args = tuple((arg["index"], _COMPARE[arg["op"]], arg["value"], arg.get("valueTwo", 0))
                     for arg in call.get("args") or ())
        chosen.append(Rule(names, _action(call["action"], call.get("errnoRet"), default_errno), args))
    return chosen


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def _libseccomp() -> ctypes.CDLL:
    for name in ("libseccomp.so.2", ctypes.util.find_library("seccomp")):
        if name is None:
            continue
        try:
            lib = ctypes.CDLL(name, use_errno=True)
            break
        except OSError:
            continue
    else:
        raise SeccompUnavailable("libseccomp.so.2 not found (Debian: apt-get install libseccomp2); "
                                 "sandboxes do not start without their syscall filter")
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_arch_native.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def _arches(lib: ctypes.CDLL, profile: dict) -> list[int]:
    """The native architecture and its sub-architectures from the profile's archMap, as libseccomp tokens."""
    native = lib.seccomp_arch_native()
    for entry in profile.get("archMap") or ():
        tokens = [lib.seccomp_arch_resolve_name(name.removeprefix("SCMP_ARCH_").lower().encode())
                  for name in [entry["architecture"], *(entry.get("subArchitectures") or ())]]
        if tokens[0] == native:
            return [token for token in tokens if token] if SUB_ARCHITECTURES else tokens[:1]
    return [native]


def _check(rc: int, what: str) -> None:
    if rc < 0:
        raise SeccompUnavailable(f"libseccomp {what}: {os.strerror(-rc)}")


def compile_filter(kept_capabilities: Iterable[int], profile_path: Path = PROFILE) -> bytes:
    """Docker's profile for a sandbox keeping `kept_capabilities`, as a classic BPF program (8-byte insns)."""
    profile = json.loads(profile_path.read_text())
    caps = {CAPABILITY_NAMES[cap] for cap in kept_capabilities if cap < len(CAPABILITY_NAMES)}
    chosen = rules(profile, profile_arch(), caps, kernel_version())
    lib = _libseccomp()
    default = _action(profile["defaultAction"], None, profile.get("defaultErrnoRet", errno.EPERM))
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise SeccompUnavailable("libseccomp seccomp_init failed")
    try:
        arches = _arches(lib, profile)
        for token in arches[1:]:
            _check(lib.seccomp_arch_add(ctx, token), "arch_add")
        lib.seccomp_attr_set(ctx, _FLTATR_CTL_OPTIMIZE, 2)  # libseccomp < 2.5 refuses it: a slower install
        _check(lib.seccomp_attr_set(ctx, _FLTATR_ACT_BADARCH, ACT_KILL_PROCESS), "bad-arch action")
        highest = {token: -1 for token in arches}
        for rule in chosen:
            if rule.action == default:
                continue  # libseccomp refuses a rule that repeats the default (so does runc)
            conditions = (_ArgCmp * max(1, len(rule.args)))(*(_ArgCmp(*arg) for arg in rule.args))
            for name in rule.names:
                number = lib.seccomp_syscall_resolve_name(name.encode())
                if number == _NR_SCMP_ERROR:
                    continue  # newer than this libseccomp: left to the ENOSYS guard below, as runc does
                _check(lib.seccomp_rule_add_array(ctx, rule.action, number, len(rule.args), conditions),
                       f"rule {name}")
                for token in arches:
                    resolved = lib.seccomp_syscall_resolve_name_arch(token, name.encode())
                    highest[token] = max(highest[token], resolved)
        fd = os.memfd_create("contree-tui-seccomp", os.MFD_CLOEXEC)
        try:
            _check(lib.seccomp_export_bpf(ctx, fd), "export_bpf")
            size = os.lseek(fd, 0, os.SEEK_END)
            program = os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
    return _enosys_guard(highest) + program


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


_LD_W_ABS, _JEQ, _JGT, _JGE, _RET = 0x20, 0x15, 0x25, 0x35, 0x06
_JA = 0x05


def _enosys_guard(highest: dict[int, int]) -> bytes:
    """A prologue returning ENOSYS for a syscall above the highest the filter names on its architecture.

    Prepended to libseccomp's program, whose jumps are all relative, so it is untouched. Per architecture:
    `if arch == A: if nr > highest[A]: return ENOSYS; else go to libseccomp's program`.
    """
    x32 = highest.pop(_SCMP_ARCH_X32, None)
    blocks: list[list[tuple[int, int, int, int] | str]] = []
    for token, top in highest.items():
        if top < 0:
            continue
        if token == _AUDIT_ARCH_X86_64 and x32 is not None and x32 >= 0:
            blocks.append([(_JEQ, 0, 4, token), (_LD_W_ABS, 0, 0, 0), (_JGE, 0, 1, _X32_SYSCALL_BIT),
                           ("gt", x32), ("gt", top)])
        else:
            blocks.append([(_JEQ, 0, 2, token), (_LD_W_ABS, 0, 0, 0), ("gt", top)])
    flat = [item for block in blocks for item in block]
    # layout: ld arch, the blocks, `ja +1` (no block's arch), ret ENOSYS, then libseccomp's program
    enosys = 1 + len(flat) + 1
    out = [_insn(_LD_W_ABS, 0, 0, 4)]
    for index, item in enumerate(flat, start=1):
        if item[0] == "gt":
            out.append(_insn(_JGT, enosys - index - 1, enosys + 1 - index - 1, item[1]))
        else:
            out.append(_insn(*item))  # type: ignore[arg-type]
    out.append(_insn(_JA, 0, 0, 1))
    out.append(_insn(_RET, 0, 0, ACT_ERRNO | errno.ENOSYS))
    return b"".join(out)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
# program → (its buffer, the sock_fprog pointing at it), made before a fork: building them in a freshly forked
# interpreter touched enough copy-on-write pages to double the install (509 → 259 us, median of 100).
_prepared: dict[bytes, tuple[ctypes.Array[ctypes.c_char], _SockFprog]] = {}


def _prepare(program: bytes) -> _SockFprog:
    if program not in _prepared:
        if not program or len(program) % 8 or len(program) // 8 > 4096:
            raise ValueError(f"not a classic BPF program: {len(program)} bytes")
        buffer = ctypes.create_string_buffer(program, len(program))
        _prepared[program] = (buffer, _SockFprog(len(program) // 8, ctypes.addressof(buffer)))
    return _prepared[program][1]


@functools.cache
def program_for(kept_capabilities: frozenset[int]) -> bytes:
    """compile_filter, once per process, ready to apply (a fork inherits both: the Python keepers never
    compile)."""
    program = compile_filter(kept_capabilities)
    _prepare(program)
    return program


def apply(program: bytes, *, no_new_privs: bool = False) -> None:
    """Install `program` on the calling thread (and everything it execs and forks from now on).

    Without `no_new_privs` the caller needs CAP_SYS_ADMIN (the keepers install it as root, before their
    credential change, where runc does when no-new-privileges is off, so setuid programs in images keep
    working as under Docker). A forked helper that is not root, or wants setuid programs powerless too,
    passes no_new_privs=True. Everything after this call must be something the filter allows.
    """
    fprog = _prepare(program)
    if no_new_privs and _prctl(_PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0),
                               ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl no_new_privs: {os.strerror(err)}")
    if _prctl(_PR_SET_SECCOMP, ctypes.c_ulong(_SECCOMP_MODE_FILTER), ctypes.byref(fprog), ctypes.c_ulong(0),
              ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp filter: {os.strerror(err)}")
