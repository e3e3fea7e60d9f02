"""Issue #10 note: device nodes from a rootfs tarball were extracted as real device nodes in the state dir
(mode 0666: a tarball's block device 8:0 is the host's disk to anyone). Imports now leave every character
and block device out, with the hard links to them (tarfile would re-extract a link's missing target
without the filter); FIFOs and setuid bits are kept, as Docker keeps them (rootfs_import.py says why).
Before the fix dev/sda, dev/null, dev/wh and both links existed as devices in the layer, and a rootfs
directory's dev/null was copied as a regular file."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
from pathlib import Path

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import OperationStatus
from tests.engine.helpers import sh, stdout


def _member(name: str, kind: bytes, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o666
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def _hostile_rootfs(path: Path) -> Path:
    busybox = Path(shutil.which("busybox") or "/bin/busybox").read_bytes()
    with tarfile.open(path, "w") as archive:
        for name, mode in (("bin/busybox", 0o755), ("bin/su", 0o4755)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(busybox), mode
            archive.addfile(info, io.BytesIO(busybox))
        archive.addfile(_member("bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox"))
        archive.addfile(_member("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0))
        archive.addfile(_member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3))
        archive.addfile(_member("dev/wh", tarfile.CHRTYPE, devmajor=0, devminor=0))  # a whiteout's shape
        archive.addfile(_member("etc/disk", tarfile.LNKTYPE, linkname="dev/sda"))
        archive.addfile(_member("etc/disk2", tarfile.LNKTYPE, linkname="./etc/disk"))  # a link to the link
        archive.addfile(_member("dev/fifo", tarfile.FIFOTYPE))
        motd = b"still an image\n"
        info = tarfile.TarInfo("etc/motd")
        info.size = len(motd)
        archive.addfile(info, io.BytesIO(motd))
    return path


def _kinds(layer: Path) -> dict[str, int]:
    return {str(p.relative_to(layer)): stat.S_IFMT(p.lstat().st_mode) for p in layer.rglob("*")}


async def test_tarball_devices_never_reach_the_host(engine: Engine, tmp_path: Path) -> None:
    image = await engine.import_rootfs(_hostile_rootfs(tmp_path / "rootfs.tar"))
    layer = Path(engine.layer_path(image.layers[0]))
    kinds = _kinds(layer)
    assert not [name for name, kind in kinds.items() if kind in (stat.S_IFCHR, stat.S_IFBLK)], kinds
    assert not {"dev/sda", "dev/null", "dev/wh", "etc/disk", "etc/disk2"} & set(kinds)
    assert kinds["dev/fifo"] == stat.S_IFIFO
    assert stat.S_IMODE((layer / "bin/su").stat().st_mode) == 0o4755  # setuid kept, as by Docker
    # Offline: a networked run would also show the engine's /etc/resolv.conf (sandbox/network.py).
    op = await sh(engine, image.uuid, "cat /etc/motd; ls /etc", disposable=True, networking={"enabled": False})
    assert op.status is OperationStatus.SUCCESS, op.error
    assert stdout(op) == "still an image\nmotd\n"


async def test_directory_devices_are_left_out(engine: Engine, tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "dev").mkdir(parents=True)
    (root / "bin").mkdir()
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", root / "bin/busybox")
    os.symlink("/bin/busybox", root / "bin/sh")
    os.mknod(root / "dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    (root / "dev/kept.txt").write_text("x")
    image = await engine.import_rootfs(root)
    layer = Path(engine.layer_path(image.layers[0]))
    assert sorted(os.listdir(layer / "dev")) == ["kept.txt"]  # before: dev/null copied as a regular file
    op = await sh(engine, image.uuid, "ls /bin/busybox", disposable=True)
    assert stdout(op) == "/bin/busybox\n"
