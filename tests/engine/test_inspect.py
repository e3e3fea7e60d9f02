"""Reading images without running them, confined to the image's root."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.inspect import Unprocessable
from contree_tui.engine.models import EngineError, Image, NotFound
from tests.engine.helpers import sh


async def test_list_directory_describes_entries_with_owner_names(engine: Engine, busybox: Image) -> None:
    listing = await engine.list_directory(busybox, "/bin")
    entries = {item["path"]: item for item in listing["files"]}
    assert entries["busybox"]["is_regular"] and entries["busybox"]["owner"] == "root"
    assert entries["sh"]["is_symlink"] and entries["sh"]["symlink_to"] == "/bin/busybox"
    assert listing["path"] == "/bin"


async def test_read_file_and_missing_paths(engine: Engine, busybox: Image) -> None:
    assert b"root:x:0:0" in await engine.read_file(busybox, "/etc/passwd")
    with pytest.raises(NotFound):
        await engine.read_file(busybox, "/etc/nope")
    with pytest.raises(Unprocessable):
        await engine.read_file(busybox, "/etc")
    with pytest.raises(Unprocessable):
        await engine.list_directory(busybox, "/etc/passwd")
    with pytest.raises(EngineError):
        await engine.read_file(busybox, "etc/passwd")


async def test_symlinks_never_lead_to_host_files(engine: Engine, busybox: Image, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host only")
    op = await sh(engine, busybox.uuid, f"ln -s {secret} /root/abs; ln -s ../../../../../..{secret} /root/rel;"
                  " ln -s / /root/up")
    child = engine.store.get_image(op.result_image_uuid)
    for link in ("/root/abs", "/root/rel"):
        with pytest.raises(NotFound):
            await engine.read_file(child, link)
    with pytest.raises(NotFound):
        await engine.read_file(child, f"/root/up{secret}")
    with pytest.raises(NotFound):
        await engine.list_directory(child, f"/../../..{tmp_path}")


async def test_archive_is_a_tar_of_the_path(engine: Engine, busybox: Image) -> None:
    op = await sh(engine, busybox.uuid, "mkdir -p /data/sub && echo one > /data/a && echo two > /data/sub/b")
    child = engine.store.get_image(op.result_image_uuid)
    data = await engine.archive(child, "/data")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        names = sorted(archive.getnames())
        assert names == ["data", "data/a", "data/sub", "data/sub/b"]
        assert archive.extractfile("data/sub/b").read() == b"two\n"
