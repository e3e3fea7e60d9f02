"""Issue #11: hard links in layers. A link to an earlier entry of its own layer is a hard link on disk. A
link to a file of a lower layer (`docker commit` and some builders write them: the layer's tar names a
target it does not hold) gets a copy of that file, made by a confined helper once the layers below are
extracted (lower_links.py): content, owner, mode and file capabilities; the layer's further links to the
same file share the copy's inode; a link to a lower symlink copies the symlink. A link to nothing, or a
link in a root layer (nothing below), refuses the import with an error naming the entry, and leaves
nothing."""

from __future__ import annotations

import io
import os
import struct
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.models import OperationStatus
from tests.engine.helpers import sh, stdout
from tests.engine.test_image_import import imported, layer_dirs, leftovers
from tests.images.busybox_layouts import busybox_bytes, busybox_layer
from tests.images.oci_build import File, Hardlink, Symlink, layer_tar, write_layout

CAP_V2_DAC_OVERRIDE = struct.pack("<IIIII", 0x02000001, 1 << 1, 0, 0, 0)


def _capable_busybox_layer() -> bytes:
    """busybox_layer() plus /usr/capbin/cat, a busybox carrying cap_dac_override+ep (a PAX xattr)."""
    raw = layer_tar(busybox_layer(**{"etc/base": File(b"from below\n", 0o640, 7, 8),
                                     "etc/base-link": Symlink("base")}))
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(raw)) as src, tarfile.open(fileobj=buf, mode="w",
                                                                      format=tarfile.PAX_FORMAT) as tar:
        for member in src:
            if member.name == "usr":
                continue
            tar.addfile(member, src.extractfile(member) if member.isreg() else None)
        info = tarfile.TarInfo("usr/capbin/cat")
        info.size, info.mode = len(busybox_bytes()), 0o755
        info.pax_headers = {"SCHILY.xattr.security.capability": CAP_V2_DAC_OVERRIDE.decode("utf-8", "surrogateescape")}
        tar.addfile(info, io.BytesIO(busybox_bytes()))
    return buf.getvalue()


async def test_a_link_inside_its_layer_is_a_hard_link(engine: Engine, tmp_path: Path) -> None:
    write_layout(tmp_path / "layout", [busybox_layer(), {"opt/a": b"shared\n", "opt/b": Hardlink("opt/a")}])
    op = await imported(engine, f"oci:{tmp_path / 'layout'}", tag="links")
    assert op.status is OperationStatus.SUCCESS, op.error
    assert stdout(await sh(engine, "tag:links", "cat /opt/b; stat -c %h /opt/a")) == "shared\n2\n"


async def test_links_to_lower_files_get_copies(engine: Engine, tmp_path: Path) -> None:
    # in tar order (sorted): the links first, then the layer's own /etc/base, which they do not see
    top = {"a/linked": Hardlink("etc/base"), "a/again": Hardlink("/etc/base"), "a/sym": Hardlink("etc/base-link"),
           "deep/new/cat": Hardlink("usr/capbin/cat"), "etc/base": b"rewritten above\n"}
    write_layout(tmp_path / "layout", [_capable_busybox_layer(), {"data": b"middle layer\n"}, top])
    op = await imported(engine, f"oci:{tmp_path / 'layout'}", tag="lower-links")
    assert op.status is OperationStatus.SUCCESS, op.error
    log = [e.data["message"] for e in engine.store.events(op.uuid) if e.type == "import_log"]
    assert any("layer 3/3: 4 hard links to files of lower layers made" in m for m in log), log
    image = engine.store.get_image(op.result_image_uuid)
    layer = Path(engine.layer_path(image.layers[-1]))
    st = (layer / "a/linked").lstat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777, st.st_nlink) == (7, 8, 0o640, 2)
    assert (layer / "a/again").lstat().st_ino == st.st_ino  # the layer's links to one file share a copy
    assert os.readlink(layer / "a/sym") == "base"
    assert os.getxattr(layer / "deep/new/cat", "security.capability") == CAP_V2_DAC_OVERRIDE
    assert stdout(await sh(engine, "tag:lower-links", "cat /a/linked /a/again /etc/base")) == \
        "from below\nfrom below\nrewritten above\n"  # the links hold the lower file; the layer's own is its own
    # as uid 1000: the plain cat cannot read the 0640 copy, the copied cat with cap_dac_override can
    run = await sh(engine, "tag:lower-links", "cat /a/linked 2>/dev/null || echo denied; /deep/new/cat /a/linked",
                   uid=1000)
    assert stdout(run) == "denied\nfrom below\n"


async def test_a_link_to_nothing_below_is_refused_by_name(engine: Engine, tmp_path: Path) -> None:
    before = layer_dirs(engine)
    write_layout(tmp_path / "layout", [busybox_layer(), {"opt/linked": Hardlink("etc/missing")}])
    op = await imported(engine, f"oci:{tmp_path / 'layout'}")
    assert op.status is OperationStatus.FAILED
    assert "'opt/linked' is a hard link to 'etc/missing', which neither this layer nor" in op.error, op.error
    assert layer_dirs(engine) == before and leftovers(engine) == []


async def test_a_root_tarball_link_to_a_missing_entry_is_refused_by_name(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "rootfs.tar"
    path.write_bytes(layer_tar({"bin/busybox": File(busybox_bytes(), 0o755), "opt/linked": Hardlink("etc/gone")}))
    op = await imported(engine, f"rootfs:{path}")
    assert op.status is OperationStatus.FAILED
    assert "'opt/linked' is a hard link to 'etc/gone', which is not an earlier entry" in op.error, op.error


async def test_without_sandbox_users_too(open_engine: Callable[..., Awaitable[Engine]], tmp_path: Path) -> None:
    """EngineConfig(sandbox_ids=None) (the benchmarks' path): the helpers are HELPER_UID with their
    capabilities in the host's namespace; the copies, owners and capabilities land the same."""
    engine = await open_engine(EngineConfig(sandbox_ids=None))
    top = {"a/linked": Hardlink("etc/base"), "deep/cat": Hardlink("usr/capbin/cat")}
    write_layout(tmp_path / "layout", [_capable_busybox_layer(), top])
    op = await imported(engine, f"oci:{tmp_path / 'layout'}")
    assert op.status is OperationStatus.SUCCESS, op.error
    image = engine.store.get_image(op.result_image_uuid)
    base, layer = (Path(engine.layer_path(x)) for x in image.layers)
    st = (layer / "a/linked").lstat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (7, 8, 0o640)
    assert (layer / "a/linked").read_bytes() == b"from below\n"
    for path in (base / "usr/capbin/cat", layer / "deep/cat"):
        assert os.getxattr(path, "security.capability") == CAP_V2_DAC_OVERRIDE
