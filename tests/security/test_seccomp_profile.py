"""seccomp.py's translation of Docker's profile (moby/profiles setupSeccomp) and its public `apply`, which the
inspect helpers call in a forked Python child."""

from __future__ import annotations

import ctypes
import errno
import json
import os
from pathlib import Path

import pytest

from contree_tui.engine.sandbox import seccomp
from contree_tui.engine.sandbox.launch import KEPT_CAPABILITIES, seccomp_program

PROFILE = json.loads(seccomp.PROFILE.read_text())
KEPT = {seccomp.CAPABILITY_NAMES[cap] for cap in KEPT_CAPABILITIES}
MASKED_EQ = 7
NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET


def _allowed(rules: list[seccomp.Rule]) -> set[str]:
    return {name for rule in rules if rule.action == seccomp.ACT_ALLOW and not rule.args for name in rule.names}


def test_the_sandbox_gets_dockers_no_sys_admin_rules() -> None:
    rules = seccomp.rules(PROFILE, "amd64", KEPT, (6, 18))
    allowed = _allowed(rules)
    assert {"read", "execve", "fork", "chroot", "ptrace", "arch_prctl"} <= allowed
    for refused in ("mount", "umount2", "unshare", "setns", "bpf", "fsopen", "open_by_handle_at", "add_key",
                    "keyctl", "request_key", "io_uring_setup", "userfaultfd", "kexec_load", "init_module",
                    "reboot", "swapon", "clone", "clone3", "socket", "personality"):
        assert refused not in allowed, refused
    conditional = {(name, rule.action, rule.args) for rule in rules for name in rule.names if rule.args}
    assert ("clone", seccomp.ACT_ALLOW, ((0, MASKED_EQ, NAMESPACE_FLAGS, 0),)) in conditional
    assert {args[0][2] for name, _, args in conditional if name == "personality"} == {0, 8, 0x20000, 0x20008,
                                                                                     0xFFFFFFFF}
    assert [rule.action for rule in rules if rule.names == ("clone3",)] == [seccomp.ACT_ERRNO | errno.ENOSYS]


def test_capabilities_arches_and_kernel_decide_like_docker() -> None:
    admin = _allowed(seccomp.rules(PROFILE, "amd64", KEPT | {"CAP_SYS_ADMIN"}, (6, 18)))
    assert {"mount", "unshare", "clone", "clone3"} <= admin
    assert "ptrace" not in _allowed(seccomp.rules(PROFILE, "amd64", KEPT, (4, 4)))  # minKernel 4.8
    assert "chroot" not in _allowed(seccomp.rules(PROFILE, "amd64", KEPT - {"CAP_SYS_CHROOT"}, (6, 18)))
    assert "arch_prctl" not in _allowed(seccomp.rules(PROFILE, "arm64", KEPT, (6, 18)))


def test_apply_in_a_forked_helper_refuses_namespaces_and_keys() -> None:
    """The inspect helpers' use: fork, drop to an unprivileged uid, apply with no_new_privs, then work."""
    program = seccomp_program()
    libc = ctypes.CDLL(None, use_errno=True)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - forked child
        try:
            os.setgid(65534)
            os.setuid(65534)
            seccomp.apply(program, no_new_privs=True)
            results = []
            for call in ((272, 0x10000000), (250, 0, -3, 0), (165, b"none", b"/tmp", b"tmpfs", 0, 0)):
                rc = libc.syscall(*call)
                results.append(errno.errorcode.get(ctypes.get_errno(), "?") if rc < 0 else "OK")
            results.append(str(os.getpid() > 0))
            os.write(write_fd, " ".join(results).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    with os.fdopen(read_fd, "rb") as fh:
        assert fh.read().decode() == "EPERM EPERM EPERM True"  # unshare, keyctl, mount; getpid works


def test_apply_refuses_what_is_not_a_program() -> None:
    with pytest.raises(ValueError):
        seccomp.apply(b"123")


def test_a_profile_it_cannot_honour_is_refused(tmp_path: Path) -> None:
    """An action the keepers cannot honour stops the compile (and with it the engine's start: 503)."""
    profile = dict(PROFILE, syscalls=[{"names": ["read"], "action": "SCMP_ACT_TRACE"}])
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    with pytest.raises(seccomp.SeccompUnavailable, match="SCMP_ACT_TRACE"):
        seccomp.compile_filter(KEPT_CAPABILITIES, profile_path=path)
