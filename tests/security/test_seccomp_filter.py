"""Issue #10 item 6: with no syscall filter a run could unshare(CLONE_NEWUSER|CLONE_NEWNS) and mount a tmpfs
(root of a new user namespace), and use the host's kernel keyring. Every run is now under Docker's default
seccomp profile with its argument checks (seccomp.py), under both keepers. Before the fix each refusal
below was OK (the probe ran unfiltered) and /proc/self/status said "Seccomp: 0"."""

from __future__ import annotations

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import OperationStatus
from tests.engine.helpers import sh, stdout
from tests.security.probing import probe


async def test_namespaces_and_mounts_are_refused(keeper_engine: tuple[Engine, str], probe_binary: bytes) -> None:
    engine, image = keeper_engine
    results = await probe(engine, image, probe_binary, "unshare-user", "unshare-ns", "clone-newuser", "mount",
                          "clone3")
    assert results == {"unshare-user": "EPERM", "unshare-ns": "EPERM", "clone-newuser": "EPERM", "mount": "EPERM",
                       # Docker's answer: libc then falls back to clone, whose flags the filter can check
                       "clone3": "ENOSYS"}


async def test_busybox_unshare_and_mount_fail(keeper_engine: tuple[Engine, str]) -> None:
    """The attack as reported, with the image's own tools."""
    engine, image = keeper_engine
    op = await sh(engine, image, "unshare -U -m -r sh -c 'mount -t tmpfs none /tmp && echo mounted'; echo rc=$?;"
                  " mount -t tmpfs none /tmp 2>/dev/null && echo mounted-directly; echo done", disposable=True)
    assert op.status is OperationStatus.SUCCESS, op.error
    out = stdout(op)
    assert "mounted" not in out and "rc=0" not in out and out.endswith("done\n"), out


async def test_docker_argument_checks(keeper_engine: tuple[Engine, str], probe_binary: bytes) -> None:
    engine, image = keeper_engine
    results = await probe(engine, image, probe_binary, "personality_query", "personality_norandom", "vsock", "alg",
                          "io_uring", "chroot")
    assert results == {
        "personality_query": "OK",  # personality(0xffffffff) only reads: allowed
        "personality_norandom": "EPERM",  # ADDR_NO_RANDOMIZE is not one of Docker's allowed values
        "vsock": "EPERM", "alg": "EPERM",  # socket(): AF_VSOCK and AF_ALG are refused, as by Docker
        "io_uring": "EPERM",  # not in Docker's list: its requests would bypass the filter
        "chroot": "OK",  # Docker allows chroot when CAP_SYS_CHROOT is kept, and the sandbox keeps it
    }


async def test_ordinary_work_still_works(keeper_engine: tuple[Engine, str], probe_binary: bytes) -> None:
    """fork, exec, pipes, a socketpair and TCP over loopback (networking off), as root and as another uid."""
    engine, image = keeper_engine
    for uid in (0, 1000):
        results = await probe(engine, image, probe_binary, "work", "unshare-user", uid=uid, gid=uid,
                              networking={"enabled": False})
        assert results == {"work": "OK", "unshare-user": "EPERM"}
    op = await sh(engine, image, "ls / | grep -c . ; cat /etc/passwd | head -n 1 | cut -d: -f1; echo a | sort",
                  disposable=True)
    assert stdout(op).split() == [stdout(op).split()[0], "root", "a"] and int(stdout(op).split()[0]) > 5


async def test_the_filter_covers_the_command_and_pid_1(keeper_engine: tuple[Engine, str]) -> None:
    """Seccomp mode 2 (filter) on the command and on the keeper; no_new_privs stays off, so setuid programs
    in images work as under Docker (the filter is installed while root, before the credential change)."""
    engine, image = keeper_engine
    op = await sh(engine, image, "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status /proc/1/status", uid=1000,
                  disposable=True)
    assert sorted(stdout(op).split()) == sorted(
        ["/proc/self/status:Seccomp:", "2", "/proc/self/status:NoNewPrivs:", "0",
         "/proc/1/status:Seccomp:", "2", "/proc/1/status:NoNewPrivs:", "0"]), stdout(op)


async def test_32_bit_syscalls_kill_the_process(keeper_engine: tuple[Engine, str], probe_binary: bytes) -> None:
    """Stricter than Docker (seccomp.SUB_ARCHITECTURES): the i386 entry point is closed; SIGSYS, not EPERM."""
    engine, image = keeper_engine
    blob = engine.add_file(probe_binary)
    op = await engine.run({"image": image, "command": "/probe", "args": ["work", "int80"], "disposable": True,
                           "files": {"/probe": {"uuid": blob.uuid, "mode": "0755"}}})
    assert op.result is not None, op.error
    assert stdout(op) == "work=OK\n"
    assert op.result["state"]["signal"] == 31  # SIGSYS
