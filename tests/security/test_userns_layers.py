"""Sandbox users (userns.py) leave layers as they were: on disk, a sandbox's uid u is uid u, whatever host
range the sandbox runs in, so commits stay renames and every layer made before still runs. Files made by
root, by a chown, by a run as uid 1000 and injected with an owner land on disk with exactly those owners;
root-owned image files stay root's to change and delete (a deletion commits a char 0/0 whiteout)."""

from __future__ import annotations

import os
import stat

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import OperationStatus
from tests.engine.helpers import sh, stdout


def _top_layer(engine: Engine, image_uuid: str | None) -> str:
    assert image_uuid is not None
    return engine.layer_path(engine.store.get_image(image_uuid).layers[-1])


def _owner(path: str) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


async def test_owners_on_disk_are_the_sandbox_ids(keeper_engine: tuple[Engine, str]) -> None:
    engine, image = keeper_engine
    op = await sh(engine, image, "echo a > /by-root; echo b > /by-1000; chown 1000:1001 /by-1000; mkdir /d;"
                  " echo c >> /etc/group; rm /etc/passwd")
    assert op.status is OperationStatus.SUCCESS, op.error
    layer = _top_layer(engine, op.result_image_uuid)
    assert _owner(f"{layer}/by-root") == (0, 0)
    assert _owner(f"{layer}/by-1000") == (1000, 1001)
    assert _owner(f"{layer}/d") == (0, 0)
    assert _owner(f"{layer}/etc") == (0, 0) and _owner(f"{layer}/etc/group") == (0, 0)  # copied up as root's
    whiteout = os.lstat(f"{layer}/etc/passwd")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0 and _owner(f"{layer}/etc/passwd") == (0, 0)
    # and the next run sees it all as committed
    child = await sh(engine, op.result_image_uuid, "ls -ln /by-root /by-1000 | awk '{print $3\":\"$4}';"
                     " test -e /etc/passwd && echo passwd || echo no-passwd", disposable=True)
    assert stdout(child).split() == ["1000:1001", "0:0", "no-passwd"]


async def test_a_run_as_uid_1000_owns_what_it_makes(keeper_engine: tuple[Engine, str]) -> None:
    engine, image = keeper_engine
    op = await sh(engine, image, "id -u; echo x > /tmp/mine; echo y > /etc/nope 2>/dev/null || echo denied",
                  uid=1000, gid=1000)
    assert stdout(op).split() == ["1000", "denied"]
    assert _owner(f"{_top_layer(engine, op.result_image_uuid)}/tmp/mine") == (1000, 1000)


async def test_injected_files_keep_their_owner(keeper_engine: tuple[Engine, str]) -> None:
    engine, image = keeper_engine
    blob = engine.add_file(b"payload\n")
    files = {"/opt/app/conf": {"uuid": blob.uuid, "mode": "0640", "uid": 1234, "gid": 99},
             "/root-file": {"uuid": blob.uuid, "mode": "0600"}}
    op = await sh(engine, image, "stat -c '%u:%g:%a' /opt/app/conf /root-file /opt/app", files=files)
    assert stdout(op).split() == ["1234:99:640", "0:0:600", "0:0:755"]
    layer = _top_layer(engine, op.result_image_uuid)
    conf = os.lstat(f"{layer}/opt/app/conf")
    assert (conf.st_uid, conf.st_gid, stat.S_IMODE(conf.st_mode)) == (1234, 99, 0o640)
    assert _owner(f"{layer}/root-file") == (0, 0) and _owner(f"{layer}/opt/app") == (0, 0)
    # unchanged when injected again (same bytes, mode and owner): nothing new to commit
    again = await sh(engine, op.result_image_uuid, "true", files=files)
    assert again.result_image_uuid == op.result_image_uuid
