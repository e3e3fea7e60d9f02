"""Base images offline: busybox built in, rootfs directories and tarballs imported."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest

from contree_tui.engine.engine import BUSYBOX_TAG, Engine
from contree_tui.engine.models import EngineError
from tests.engine.helpers import sh, stdout


async def test_busybox_is_built_once_and_runs(engine: Engine) -> None:
    start = time.perf_counter()
    first = await engine.ensure_busybox()
    assert time.perf_counter() - start < 2.0
    assert (await engine.ensure_busybox()).uuid == first.uuid
    assert first.tag == BUSYBOX_TAG
    op = await sh(engine, f"tag:{BUSYBOX_TAG}", "grep ^root: /etc/passwd; grep ^root: /etc/group")
    assert stdout(op).splitlines() == ["root:x:0:0:root:/root:/bin/sh", "root:x:0:"]


def _tarball(path: Path, members: dict[str, bytes | str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, str):  # a symlink target
                info.type, info.linkname = tarfile.SYMTYPE, content
                archive.addfile(info)
            else:
                info.size, info.mode = len(content), 0o755
                archive.addfile(info, io.BytesIO(content))
    return path


async def test_rootfs_tarball_becomes_a_runnable_image(engine: Engine, tmp_path: Path) -> None:
    busybox = Path("/bin/busybox").read_bytes()
    tar = _tarball(tmp_path / "rootfs.tar.gz", {"bin/busybox": busybox, "bin/sh": "/bin/busybox",
                                                "etc/motd": b"hello from a tarball\n"})
    image = await engine.import_rootfs(tar, tag="mini:1")
    op = await engine.run({"image": "tag:mini:1", "command": "/bin/sh", "args": ["-c", "/bin/busybox cat /etc/motd"]})
    assert stdout(op) == "hello from a tarball\n"
    assert image.layers and engine.store.image_by_tag("mini:1").uuid == image.uuid


async def test_tarball_symlink_cannot_write_outside_the_layer(engine: Engine, tmp_path: Path) -> None:
    target = tmp_path / "outside"
    target.mkdir()
    tar = _tarball(tmp_path / "evil.tar", {"escape": str(target), "escape/planted": b"x"})
    try:
        await engine.import_rootfs(tar)
    except EngineError:
        pass
    assert not (target / "planted").exists()


async def test_bad_sources_give_clear_errors(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="no such rootfs"):
        await engine.import_rootfs(tmp_path / "missing")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all")
    with pytest.raises(EngineError, match="not a readable tar"):
        await engine.import_rootfs(junk)
    assert list(engine.state.runs.iterdir()) == []


async def test_rootfs_directory_import_keeps_modes(engine: Engine, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_bytes(Path("/bin/busybox").read_bytes())
    (root / "bin" / "busybox").chmod(0o755)
    (root / "bin" / "sh").symlink_to("/bin/busybox")
    image = await engine.import_rootfs(root)
    op = await engine.run({"image": image.uuid, "command": "/bin/sh", "args": ["-c", "echo ok"]})
    assert stdout(op) == "ok\n"
