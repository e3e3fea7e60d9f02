"""Uploaded files placed into the sandbox (`files` in the spawn request): content, mode, owner, refusals,
no-op re-injection, and symlinks in the image that must not steer a write onto the host."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import EngineError, Image, OperationStatus
from tests.engine.helpers import sh, stdout

CONTENT = b"injected content\n"


async def test_injected_files_have_content_mode_and_owner(engine: Engine, busybox: Image) -> None:
    f = engine.add_file(CONTENT)
    files = {
        "/app/a.txt": {"uuid": f.uuid, "mode": "0644"},
        "/app/run.sh": {"uuid": f.uuid, "mode": "0755", "uid": 1000, "gid": 1001},
        "/app/stat.txt": {"uuid": f.uuid, "mode": "0o100640"},  # MCP's oct(st_mode) form
        "/app/stat644.txt": {"uuid": f.uuid, "mode": "0o100644"},
        "/deep/new/dir/d.txt": {"uuid": f.uuid, "mode": "0600", "uid": 7, "gid": 8},
    }
    op = await sh(engine, busybox.uuid, "stat -c '%n %a %u %g' /app/* /deep/new/dir/d.txt; cat /app/a.txt",
                  files=files)
    assert op.status is OperationStatus.SUCCESS, op.error
    assert stdout(op).splitlines() == [
        "/app/a.txt 644 0 0",
        "/app/run.sh 755 1000 1001",
        "/app/stat.txt 640 0 0",
        "/app/stat644.txt 644 0 0",
        "/deep/new/dir/d.txt 600 7 8",
        CONTENT.decode().strip(),
    ]
    # and they are part of the result image
    again = await sh(engine, op.result_image_uuid, "cat /deep/new/dir/d.txt", disposable=True)
    assert stdout(again) == CONTENT.decode()


@pytest.mark.parametrize("path", ["app/a.txt", "", "/app/../etc/passwd", "/../a", "/"])
async def test_relative_and_dotdot_paths_are_refused(engine: Engine, busybox: Image, path: str) -> None:
    f = engine.add_file(CONTENT)
    before = len(engine.store.list_operations(limit=1000))
    with pytest.raises(EngineError) as refused:
        await engine.spawn({"image": busybox.uuid, "command": "true",
                            "files": {path: {"uuid": f.uuid, "mode": "0644"}}})
    assert refused.value.status == 400
    assert "files" in str(refused.value)
    assert len(engine.store.list_operations(limit=1000)) == before, "a refused request must not start a run"


async def test_unknown_file_uuid_is_a_bad_request(engine: Engine, busybox: Image) -> None:
    with pytest.raises(EngineError) as missing:  # the spec's statuses for POST /instances: 400/401/403
        await engine.spawn({"image": busybox.uuid, "command": "true",
                            "files": {"/app/a.txt": {"uuid": str(uuid.uuid4()), "mode": "0644"}}})
    assert missing.value.status == 400 and "files[/app/a.txt]: no file" in str(missing.value)


async def test_reinjecting_the_same_files_changes_nothing(engine: Engine, busybox: Image) -> None:
    f = engine.add_file(CONTENT)
    files = {"/app/a.txt": {"uuid": f.uuid, "mode": "0644"},
             "/app/b.sh": {"uuid": f.uuid, "mode": "0755", "uid": 5, "gid": 6}}
    first = await sh(engine, busybox.uuid, "true", files=files)
    assert first.result_image_uuid not in (None, busybox.uuid)
    second = await sh(engine, first.result_image_uuid, "cat /app/a.txt", files=files)
    assert stdout(second) == CONTENT.decode()
    assert second.result_image_uuid == first.result_image_uuid
    # a changed mode is a change
    third = await sh(engine, first.result_image_uuid, "true", files={"/app/a.txt": {"uuid": f.uuid, "mode": "0600"}})
    assert third.result_image_uuid not in (None, first.result_image_uuid)


async def test_symlinks_in_the_image_keep_injected_files_inside(engine: Engine, busybox: Image,
                                                                tmp_path: Path) -> None:
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    host_file = tmp_path / "host-file.txt"
    host_file.write_text("host original\n")
    name = f"injected-{uuid.uuid4().hex}.txt"
    links = await sh(engine, busybox.uuid,
                     f"ln -s /etc /app && ln -s {host_dir} /hostdir && mkdir /files &&"
                     f" ln -s {host_file} /files/target.txt")
    assert links.status is OperationStatus.SUCCESS, links.error
    f = engine.add_file(CONTENT)

    through_dir = await sh(engine, links.result_image_uuid, f"cat /etc/{name}",
                           files={f"/app/{name}": {"uuid": f.uuid, "mode": "0644"}})
    assert stdout(through_dir) == CONTENT.decode(), "the link resolves inside the sandbox: /app is its /etc"
    assert not Path("/etc", name).exists()

    onto_link = await sh(engine, links.result_image_uuid, "cat /files/target.txt",
                         files={"/files/target.txt": {"uuid": f.uuid, "mode": "0644"}})
    assert stdout(onto_link) == CONTENT.decode()
    assert host_file.read_text() == "host original\n"

    # /hostdir points at a path that exists only on the host; whatever the run makes of it, the host
    # directory stays empty
    await sh(engine, links.result_image_uuid, "true", files={f"/hostdir/{name}": {"uuid": f.uuid, "mode": "0644"}})
    assert list(host_dir.iterdir()) == []
