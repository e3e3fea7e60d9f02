"""What a command inside the sandbox can and cannot reach: host files, the host network, host processes,
the powers that would let root inside mount or create a device for the host's disk."""

from __future__ import annotations

import select
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Image, OperationStatus
from tests.engine.helpers import sh, stdout

CAP_SYS_ADMIN = 21
CAP_MKNOD = 27

# The classic chroot break-out: chroot into a subdirectory without entering it, climb out with "..",
# then make the real root the root again. It works against a chroot jail; a pivot_root'ed sandbox whose
# old root is detached has nothing above its "/".
ESCAPE_C = r"""
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
    mkdir("esc", 0755);
    if (chroot("esc") != 0) { perror("chroot esc"); return 2; }
    for (int i = 0; i < 64; i++) chdir("..");
    if (chroot(".") != 0) { perror("chroot ."); return 3; }
    puts(access(argv[1], F_OK) == 0 ? "visible" : "hidden");
    return 0;
}
"""


@pytest.fixture
def host_secret(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / f"host-secret-{uuid.uuid4().hex}"
    path.write_text("host only\n")
    yield path


@pytest.fixture(scope="module")
def escape_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("needs a C compiler to build the static chroot-escape probe")
    work = tmp_path_factory.mktemp("escape")
    (work / "escape.c").write_text(ESCAPE_C)
    built = subprocess.run([gcc, "-static", "-O2", "-o", str(work / "escape"), str(work / "escape.c")],
                           capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"cannot build a static binary here: {built.stderr.strip()[:200]}")
    return work / "escape"


async def test_host_file_is_invisible_inside(engine: Engine, busybox: Image, host_secret: Path) -> None:
    op = await sh(engine, busybox.uuid,
                  f"test -e {host_secret} && echo visible || echo hidden; find / -xdev -name {host_secret.name}")
    assert stdout(op) == "hidden\n"


async def test_chroot_escape_from_inside_cannot_reach_the_host(engine: Engine, busybox: Image, host_secret: Path,
                                                               escape_binary: Path, tmp_path: Path) -> None:
    # Control: the probe does break out of a plain chroot on this host, so "hidden" below means something.
    jail = tmp_path / "jail"
    jail.mkdir()
    shutil.copy2(escape_binary, jail / "escape")
    control = subprocess.run(["chroot", str(jail), "/escape", str(host_secret)], capture_output=True, text=True)
    assert control.stdout == "visible\n", control.stderr

    probe = engine.add_file(escape_binary.read_bytes())
    op = await engine.run({"image": busybox.uuid, "command": "/escape", "args": [str(host_secret)],
                           "files": {"/escape": {"uuid": probe.uuid, "mode": "0755"}}, "disposable": True})
    assert op.status is OperationStatus.SUCCESS, op.error
    assert op.result["state"]["exit_code"] == 0, op.result
    assert stdout(op) == "hidden\n"


async def test_networking_disabled_leaves_only_loopback_and_no_way_to_the_host(engine: Engine,
                                                                                busybox: Image) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        script = (
            "sed -n 's/^ *\\([^:]*\\):.*/\\1/p' /proc/net/dev;"
            f" echo from-sandbox | nc -w 2 127.0.0.1 {port} && echo host-reached || echo host-unreachable;"
            # control: the sandbox's own loopback is up, so nc itself works in there. busybox's `nc -l` takes
            # one connection and at times got it empty (5 failures in 30 runs), so listen again until a line lands.
            " (while true; do nc -l -p 7777 >> /tmp/got; done) & server=$!; for i in $(seq 50); do"
            " echo inside | nc -w 1 127.0.0.1 7777 2>/dev/null; grep -q inside /tmp/got 2>/dev/null && break;"
            " sleep 0.1; done; kill $server; pkill nc; sort -u /tmp/got"
        )
        op = await sh(engine, busybox.uuid, script, networking={"enabled": False}, disposable=True, timeout=10)
        assert stdout(op).splitlines() == ["lo", "host-unreachable", "inside"], op.result
        readable, _, _ = select.select([listener], [], [], 0.2)
        assert not readable, "a connection from the sandbox reached the host's loopback"


async def test_proc_shows_only_the_sandboxs_processes(engine: Engine, busybox: Image) -> None:
    op = await sh(engine, busybox.uuid,
                  "cd /proc && for p in [0-9]*; do echo $p; done; echo --; grep -E '^(PPid|NSpid):' /proc/1/status")
    pids_text, status_text = stdout(op).split("--\n")
    pids = {int(p) for p in pids_text.split()}
    # pid 1 (the sandbox's init), 2 (the shell), and whatever the shell forked for the glob
    assert 1 in pids and 2 in pids
    assert max(pids) < 10 and len(pids) <= 4, pids
    # pid 1 is the root of its own pid namespace: no parent visible, one level of pids
    assert status_text.split() == ["PPid:", "0", "NSpid:", "1"]


async def test_root_inside_has_no_sys_admin_or_mknod_capability(engine: Engine, busybox: Image) -> None:
    op = await sh(engine, busybox.uuid, "grep -E '^Cap(Eff|Prm|Bnd):' /proc/self/status")
    caps = {line.split(":")[0]: int(line.split()[1], 16) for line in stdout(op).splitlines()}
    assert set(caps) == {"CapPrm", "CapEff", "CapBnd"}
    assert caps["CapEff"] != 0, "root inside keeps the harmless capabilities (chown, setuid, ...)"
    for name, value in caps.items():
        assert not value & (1 << CAP_SYS_ADMIN), name
        assert not value & (1 << CAP_MKNOD), name


async def test_mount_and_block_device_creation_fail(engine: Engine, busybox: Image) -> None:
    script = ("mkdir -p /mnt/t;"
              " mknod /tmp/disk b 8 0 && echo mknod-ok || echo mknod-refused;"
              " mount -t tmpfs none /mnt/t && echo mount-ok || echo mount-refused;"
              " mount -t proc proc /mnt/t && echo proc-ok || echo proc-refused;"
              " test -e /tmp/disk && echo disk-exists || echo no-disk")
    op = await sh(engine, busybox.uuid, script, disposable=True)
    assert stdout(op).split() == ["mknod-refused", "mount-refused", "proc-refused", "no-disk"]


async def test_kernel_settings_are_read_only_and_sensitive_proc_files_masked(engine: Engine,
                                                                             busybox: Image) -> None:
    script = ("for f in /proc/sys/kernel/core_pattern /proc/sys/vm/drop_caches /proc/sys/kernel/hostname; do"
              " (echo 1 > $f) 2>/dev/null && echo written || echo refused; done;"
              " for f in /proc/kallsyms /proc/keys /proc/timer_list; do"
              " test -e $f && cat $f | wc -c || echo 0; done; hostname")
    op = await sh(engine, busybox.uuid, script, hostname="inside", disposable=True)
    assert stdout(op).split() == ["refused"] * 3 + ["0"] * 3 + ["inside"]
    assert socket.gethostname() != "inside"
