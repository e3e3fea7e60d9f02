"""Deletes become overlay whiteouts in the child's own layer; the parent and siblings never see them."""

from __future__ import annotations

import os
import stat

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Image, OperationStatus
from tests.engine.helpers import sh, stdout

# Overlay's per-mount bookkeeping: file handles of the lower inode, "has copied-up children", and the
# random uuid of one mount. None of it means anything once the mount is gone.
OVERLAY_NOISE = ("trusted.overlay.origin", "trusted.overlay.impure", "trusted.overlay.uuid")


async def _exists(engine: Engine, image: str, path: str) -> bool:
    op = await sh(engine, image, f"test -e {path} && echo yes || echo no")
    return stdout(op) == "yes\n"


async def test_deleted_file_is_gone_in_the_child_only(engine: Engine, busybox: Image) -> None:
    child = await sh(engine, busybox.uuid, "rm /etc/hostname")
    sibling = await sh(engine, busybox.uuid, "echo sibling > /root/note")
    assert child.status is sibling.status is OperationStatus.SUCCESS
    assert len({busybox.uuid, child.result_image_uuid, sibling.result_image_uuid}) == 3

    assert not await _exists(engine, child.result_image_uuid, "/etc/hostname")
    assert await _exists(engine, busybox.uuid, "/etc/hostname")
    assert await _exists(engine, sibling.result_image_uuid, "/etc/hostname")
    # and the child's children inherit the delete
    grandchild = await sh(engine, child.result_image_uuid, "echo more > /root/more")
    assert not await _exists(engine, grandchild.result_image_uuid, "/etc/hostname")


async def test_delete_is_a_char_0_0_whiteout_in_the_childs_top_layer(engine: Engine, busybox: Image) -> None:
    child = await sh(engine, busybox.uuid, "rm /etc/hostname")
    image = engine.store.get_image(child.result_image_uuid)
    assert image.layers[:-1] == busybox.layers
    top = engine.layer_path(image.layers[-1])
    st = os.lstat(os.path.join(top, "etc/hostname"))
    assert stat.S_ISCHR(st.st_mode)
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (0, 0)
    # the base layer itself is untouched
    assert stat.S_ISREG(os.lstat(os.path.join(engine.layer_path(busybox.layers[0]), "etc/hostname")).st_mode)


async def test_recreated_directory_is_opaque(engine: Engine, busybox: Image) -> None:
    child = await sh(engine, busybox.uuid, "rm -rf /usr/sbin && mkdir /usr/sbin && echo new > /usr/sbin/only")
    image = engine.store.get_image(child.result_image_uuid)
    top = engine.layer_path(image.layers[-1])
    assert os.getxattr(os.path.join(top, "usr/sbin"), "trusted.overlay.opaque") == b"y"
    assert stdout(await sh(engine, image.uuid, "ls /usr/sbin")) == "only\n"
    # the parent still has its applet links there
    assert len(stdout(await sh(engine, busybox.uuid, "ls /usr/sbin")).split()) > 5


async def test_committed_layers_carry_no_overlay_bookkeeping_xattrs(engine: Engine, busybox: Image) -> None:
    # copy-up of lower dirs and files (origin, impure), deletes, an opaque dir, and the mount's uuid on the root
    script = ("echo x >> /etc/passwd; rm /etc/group; mkdir -p /usr/share/new; touch /usr/bin/extra;"
              " rm -rf /home; mkdir /home; chmod 700 /var/tmp")
    child = await sh(engine, busybox.uuid, script)
    grandchild = await sh(engine, child.result_image_uuid, "echo y >> /etc/passwd; rm /usr/bin/extra")
    image = engine.store.get_image(grandchild.result_image_uuid)
    assert len(image.layers) == len(busybox.layers) + 2
    seen = 0
    for layer in image.layers[1:]:
        top = engine.layer_path(layer)
        for dirpath, dirnames, filenames in os.walk(top):
            for path in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                seen += 1
                names = os.listxattr(path, follow_symlinks=False)
                assert not [n for n in names if n in OVERLAY_NOISE], (path, names)
    assert seen > 10
