"""Defence in depth for the inspect helpers (issue #10): even if image content got code running inside one,
it would hold nothing. A probe runs in a real helper sandbox (the same entry list/read/archive/grep use),
over an image that plants a library, an NSS configuration and a Python module where the helper would look,
and reports what it can do; the test asserts each door is shut.
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import resource
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.models import EngineError, Image
from contree_tui.engine.sandbox import credentials
from contree_tui.engine.sandbox.helper import (
    HELPER_UID,
    HelperFailed,
    HelperLimits,
    HelperOutput,
    HelperSet,
    HelperTimeout,
)
from tests.engine.helpers import sh
from tests.security.probing import open_fd_kinds

PLANTED = r"""
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) { setenv("PLANTED_RAN", "1", 1); }
"""
LIBRARY = "/lib/x86_64-linux-gnu/libnss_x.so.2"
SITE = next(p for p in sys.path if p.startswith("/") and p.endswith("-packages"))


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port listening on the host's 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
async def planted(engine: Engine, busybox: Image, tmp_path: Path) -> Image:
    source = tmp_path / "planted.c"
    source.write_text(PLANTED)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(tmp_path / "planted.so"), str(source)], check=True)
    library = engine.add_file((tmp_path / "planted.so").read_bytes())
    module = engine.add_file(b"import os\nos.environ['PLANTED_MODULE'] = '1'\n")
    op = await sh(engine, busybox.uuid, "printf 'passwd: x files\\ngroup: x files\\n' > /etc/nsswitch.conf"
                  " && echo secret > /root/secret && chmod 600 /root/secret && chmod 700 /root",
                  files={LIBRARY: {"uuid": library.uuid, "mode": "0755"},
                         f"{SITE}/planted_mod.py": {"uuid": module.uuid, "mode": "0644"}})
    assert op.result_image_uuid, op.error
    return engine.store.get_image(op.result_image_uuid)


def _attempt(action: Any) -> str:
    try:
        action()
    except (OSError, ImportError) as exc:
        return f"refused: {type(exc).__name__}: {exc}"
    return "allowed"


def _open_by_handle_at() -> None:
    """open_by_handle_at(AT_FDCWD, a zeroed handle, O_RDONLY). With CAP_DAC_READ_SEARCH and no filter the
    kernel would get as far as the bogus handle (EINVAL/ESTALE); only the filter answers EPERM."""
    libc = ctypes.CDLL(None, use_errno=True)
    handle = ctypes.create_string_buffer(8 + 128)
    ctypes.c_uint32.from_buffer(handle).value = 128
    if libc.syscall(304, -100, handle, os.O_RDONLY) < 0:  # SYS_open_by_handle_at on x86_64
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def probe(out: HelperOutput, host_paths: list[str], port: int) -> None:  # pragma: no cover - in the helper
    libc = ctypes.CDLL(None)
    libc.getenv.restype = ctypes.c_char_p
    effective, permitted, inheritable = credentials.capabilities()
    fds = open_fd_kinds()

    def connect() -> None:
        with socket.socket() as sock:
            sock.settimeout(1)
            sock.connect(("127.0.0.1", port))

    report = {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "pid": os.getpid(), "caps": [effective, permitted, inheritable], "bounding": credentials.bounding_set(),
        "no_new_privs": credentials.no_new_privs(),
        "open_by_handle_at": _attempt(_open_by_handle_at),
        "host_paths_seen": [p for p in host_paths if os.path.lexists(p)],
        "chroot": _attempt(lambda: os.chroot("/etc")),
        "write": _attempt(lambda: open("/probe-was-here", "w").close()),
        "dlopen": _attempt(lambda: ctypes.CDLL(LIBRARY)),
        "nss_lookup": _attempt(lambda: pwd.getpwuid(0)),
        "import": _attempt(lambda: __import__("planted_mod")),
        "fork": _attempt(lambda: os.waitpid(pid, 0) if (pid := os.fork()) else os._exit(0)),
        "connect_host_loopback": _attempt(connect),
        "planted_code_ran": [name for name in ("PLANTED_RAN", "PLANTED_MODULE")
                             if libc.getenv(name.encode()) or name in os.environ],
        "root_only_file": open("/root/secret").read(),  # noqa: SIM115 - CAP_DAC_READ_SEARCH, kept on purpose
        "host_owned_0600": _attempt(lambda: open("/host-secret").close()),
        "fd_kinds": sorted(set(fds.values())),
        "rlimits": {name: resource.getrlimit(getattr(resource, name))
                    for name in ("RLIMIT_FSIZE", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_CORE")},
    }
    out.header(report=report)


async def test_a_helper_holds_no_host_privilege(engine: Engine, planted: Image, tmp_path: Path,
                                               listener: int) -> None:
    host_paths = [str(tmp_path), str(engine.state.root), "/proc/1", "/sys/kernel", "/dev/vda", "/dev/sda"]
    # An image can ship files under /proc (a helper mounts no procfs): one that lies about the kernel's
    # capabilities must not shrink the set of those dropped.
    lie = tmp_path / "proc-lie"
    (lie / "proc/sys/kernel").mkdir(parents=True)
    (lie / "proc/sys/kernel/cap_last_cap").write_text("1\n")
    # A lower that is not one of the engine's idmapped layers: its files are owned by host ids, which the
    # sandbox namespace does not map, so a capability held there does not reach them (host root's 0600).
    (lie / "host-secret").write_text("host\n")
    (lie / "host-secret").chmod(0o600)
    helper = await engine.helpers.start([str(lie), *engine.lowers_for(planted)], engine._inspect_root,
                                  lambda out: probe(out, host_paths, listener), HelperLimits())
    report = (await helper.header(10))["report"]
    helper.close()
    # root of the sandboxes' user namespace (host uid BASE: test_a_helper_is_the_sandboxes_root_on_the_host)
    assert (report["uid"], report["euid"], report["gid"], report["groups"]) == (0, 0, 0, [])
    assert report["pid"] == 1  # pid 1 of its own pid namespace: no host process to signal or ptrace
    only_read_search = 1 << credentials.CAP_DAC_READ_SEARCH
    assert report["caps"] == [only_read_search, only_read_search, 0]
    assert report["bounding"] == only_read_search and report["no_new_privs"]
    assert report["host_paths_seen"] == []  # pivot_root + detach: no host tree in the mount namespace
    for door in ("chroot", "write", "dlopen", "import", "fork", "connect_host_loopback"):
        assert report[door].startswith("refused"), (door, report[door])
    assert report["planted_code_ran"] == []  # neither the NSS module (noexec) nor the .py (imports refused)
    assert report["root_only_file"] == "secret\n"
    # CAP_DAC_READ_SEARCH held in the sandbox namespace only: a file of host root's (uid 0 on a mount that
    # is not idmapped, so unmapped there) is out of reach. Failed before: the host capability read it.
    assert "Permission denied" in report["host_owned_0600"], report["host_owned_0600"]
    # open_by_handle_at (what a host CAP_DAC_READ_SEARCH would open host files by handle with) is refused
    # twice over: the capability holds in the sandbox namespace only, and the syscall filter refuses it.
    assert "[Errno 1]" in report["open_by_handle_at"], report["open_by_handle_at"]
    assert report["fd_kinds"] == [stat.S_IFIFO]  # only pipes: no fd on a host filesystem for open_by_handle_at
    assert report["rlimits"]["RLIMIT_FSIZE"] == [0, 0] and report["rlimits"]["RLIMIT_NPROC"] == [0, 0]
    assert report["rlimits"]["RLIMIT_CORE"] == [0, 0] and report["rlimits"]["RLIMIT_NOFILE"] == [64, 64]


async def test_a_root_only_file_is_still_readable_through_the_api(engine: Engine, planted: Image) -> None:
    assert await engine.read_file(planted, "/root/secret") == b"secret\n"
    listing = await engine.list_directory(planted, "/root")
    assert "secret" in [item["path"] for item in listing["files"]]


async def test_a_silent_helper_is_killed_at_its_deadline(engine: Engine, busybox: Image) -> None:
    lowers = engine.lowers_for(busybox)
    silent = await engine.helpers.start(lowers, engine._inspect_root, lambda out: time.sleep(60), HelperLimits())
    started = time.monotonic()
    with pytest.raises(HelperTimeout, match=r"did not answer within 0\.3 s") as refused:
        await silent.header(0.3)
    assert refused.value.status == 504 and time.monotonic() - started < 2
    assert await silent.exit_code() == -9

    def stall(out: HelperOutput) -> None:
        out.header(size=10)
        out.write(b"12345")
        out._file.flush()
        time.sleep(60)

    stalled = await engine.helpers.start(lowers, engine._inspect_root, stall, HelperLimits())
    await stalled.header(5)
    with pytest.raises(HelperTimeout, match="stalled"):
        await stalled.read_all(1 << 20, 0.3)
    assert await stalled.exit_code() == -9

    late = await engine.helpers.start(lowers, engine._inspect_root, lambda out: time.sleep(60),
                                      HelperLimits(lifetime=0.3))
    with pytest.raises(HelperTimeout):
        await late.header(10)
    assert await late.exit_code() == -9 and len(engine.helpers) == 0


async def test_a_helpers_error_answer_is_checked(engine: Engine, busybox: Image) -> None:
    """A (compromised) helper cannot make the engine answer a status of its choosing, or feed it garbage."""
    lowers = engine.lowers_for(busybox)

    def lying(out: HelperOutput) -> None:
        out._file.write(json.dumps({"ok": False, "status": 302, "error": "x" * 5000}).encode() + b"\n")

    helper = await engine.helpers.start(lowers, engine._inspect_root, lying, HelperLimits())
    with pytest.raises(HelperFailed) as failed:  # a 500, not the 302 it asked for
        await helper.header(5)
    assert failed.value.status == 500 and len(str(failed.value)) <= 2000
    garbage = await engine.helpers.start(lowers, engine._inspect_root, lambda out: out._file.write(b"x" * 100_000),
                                   HelperLimits())
    with pytest.raises(HelperFailed) as malformed:
        await garbage.header(5)
    assert malformed.value.status == 500


async def test_helpers_at_once_are_capped(engine: Engine, busybox: Image) -> None:
    """Each helper may take a CPU and a GiB: a flood of inspect requests queues, then gets a 503."""
    helpers = HelperSet(max_live=2, slot_wait=0.3)
    lowers = engine.lowers_for(busybox)
    first, second = [await helpers.start(lowers, engine._inspect_root, lambda out: time.sleep(60), HelperLimits())
                     for _ in range(2)]
    with pytest.raises(EngineError, match="already running") as refused:
        await helpers.start(lowers, engine._inspect_root, lambda out: time.sleep(60), HelperLimits())
    assert refused.value.status == 503
    first.close()
    await first.exit_code()
    third = await helpers.start(lowers, engine._inspect_root, lambda out: time.sleep(60), HelperLimits())
    await helpers.close()
    assert len(helpers) == 0 and await second.exit_code() == -9 and await third.exit_code() == -9


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as fh:
        return {key: value.strip() for key, _, value in (line.partition(":") for line in fh.read().splitlines())}


def _announce_then_wait(out: HelperOutput) -> None:  # pragma: no cover - in the helper
    out.header(ready=True)
    time.sleep(60)


async def test_a_helper_is_the_sandboxes_root_on_the_host(engine: Engine, busybox: Image, tmp_path: Path) -> None:
    """Seen from the host, a running helper (inspect and import alike) is host uid BASE, not 2,000,000,000
    with host capabilities: it is in the sandboxes' user namespace, so whatever capability it keeps holds
    there only. (Failed before: Uid 2000000000 and the host's own user namespace.)"""
    users = engine.users
    assert users is not None
    sandbox_ns, host_ns = os.fstat(users.userns_fd).st_ino, os.stat("/proc/self/ns/user").st_ino
    source, layer = tmp_path / "input", tmp_path / "layer"
    source.write_bytes(b"x")
    layer.mkdir()
    fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        importer = await engine.importers.start_writable(
            str(layer), _announce_then_wait, HelperLimits(), capabilities=frozenset({credentials.CAP_CHOWN}),
            input_fd=fd)
    finally:
        os.close(fd)
    inspector = await engine.helpers.start(engine.lowers_for(busybox), engine._inspect_root, _announce_then_wait,
                                           HelperLimits())
    for helper in (inspector, importer):
        assert (await helper.header(10))["ready"]
        status = _status(helper.pid)
        base = users.ids.uid_base
        assert status["Uid"].split() == [str(base)] * 4 and status["Gid"].split() == [str(users.ids.gid_base)] * 4
        assert os.stat(f"/proc/{helper.pid}/ns/user").st_ino == sandbox_ns != host_ns
        with open(f"/proc/{helper.pid}/uid_map") as fh:
            assert fh.read().split() == ["0", str(base), str(users.ids.count)]
        assert status["NoNewPrivs"] == "1"
        helper.close()
        assert await helper.exit_code() == -9


async def test_without_sandbox_users_a_helper_keeps_the_old_path(tmp_path: Path) -> None:
    """EngineConfig(sandbox_ids=None) (benchmarks' pre-#10 path): HELPER_UID in the host's namespace."""
    engine = await Engine.open(tmp_path / "state", EngineConfig(sandbox_ids=None))
    try:
        image = await engine.ensure_busybox()
        helper = await engine.helpers.start(engine.lowers_for(image), engine._inspect_root, _announce_then_wait,
                                            HelperLimits())
        assert (await helper.header(10))["ready"]
        assert _status(helper.pid)["Uid"].split() == [str(HELPER_UID)] * 4
        assert os.stat(f"/proc/{helper.pid}/ns/user").st_ino == os.stat("/proc/self/ns/user").st_ino
        helper.close()
        assert "bin" in [item["path"] for item in (await engine.list_directory(image, "/"))["files"]]
    finally:
        await engine.close()
