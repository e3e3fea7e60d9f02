"""Issue #11: extended attributes in layers. A layer made by GNU tar --xattrs from a real tree (setcap'd
files, user.* attributes, overlay and SELinux attributes planted on purpose) is imported over a busybox
base:

- security.capability lands on the layer's file as the image had it (v2, root id 0 on disk), and works: a
  busybox `cat` carrying cap_dac_override+ep reads a 0600 root file as uid 1000 in a run (the plain `cat`
  cannot), and /proc/self/status shows the capability; cap_net_raw+ep (/bin/ping's) lands too;
- user.* attributes round-trip byte for byte;
- trusted.overlay.*, user.overlay.* and security.selinux are not applied, and the import says so;
- a v3 capability (written inside another host's user namespace) is stored as v2.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import OperationStatus
from tests.engine.helpers import sh, stdout
from tests.engine.test_image_import import imported
from tests.images.busybox_layouts import busybox_bytes, busybox_layer
from tests.images.oci_build import layer_tar, write_layout

CAP_DAC_OVERRIDE, CAP_NET_RAW = 1, 13

pytestmark = pytest.mark.skipif(shutil.which("setcap") is None, reason="setcap (libcap2-bin) is not installed")


def _v2(cap: int) -> bytes:
    """vfs_cap_data revision 2, effective flag set, `cap` permitted."""
    return struct.pack("<IIIII", 0x02000001, 1 << cap, 0, 0, 0)


def _tree(root: Path) -> None:
    (root / "usr/capbin").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "data").mkdir()
    for path in ("usr/capbin/cat", "bin/ping"):
        (root / path).write_bytes(busybox_bytes())
        os.chmod(root / path, 0o755)
    subprocess.run(["setcap", "cap_dac_override+ep", str(root / "usr/capbin/cat")], check=True)
    subprocess.run(["setcap", "cap_net_raw+ep", str(root / "bin/ping")], check=True)
    secret = root / "data/secret"
    secret.write_text("root only\n")
    os.chmod(secret, 0o600)
    os.setxattr(root / "data/secret", "user.x", b"\x00binary\xffvalue")
    os.setxattr(root / "data", "user.dir", b"on a dir")
    os.setxattr(root / "data", "trusted.overlay.opaque", b"y")  # would hide the lower /data
    os.setxattr(root / "data/secret", "user.overlay.redirect", b"/etc")
    os.setxattr(root / "data/secret", "security.selinux", b"system_u:object_r:shadow_t:s0\0")


def _gnu_tar(root: Path) -> bytes:
    return subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-cf", "-", "-C", str(root),
                           "usr", "bin/ping", "data"], check=True, capture_output=True).stdout


async def test_capabilities_and_user_xattrs_are_restored_overlay_ones_are_not(engine: Engine, tmp_path: Path) -> None:
    _tree(tmp_path / "tree")
    layout = tmp_path / "layout"
    # the lower /data has a file the planted trusted.overlay.opaque would hide
    write_layout(layout, [busybox_layer(**{"data/lower": b"x\n"}), _gnu_tar(tmp_path / "tree")])
    op = await imported(engine, f"oci:{layout}", tag="caps")
    assert op.status is OperationStatus.SUCCESS, op.error
    image = engine.store.get_image(op.result_image_uuid)
    top = Path(engine.layer_path(image.layers[-1]))
    # on disk, as the image had them: v2 values (root id 0), user.* byte for byte
    assert os.getxattr(top / "usr/capbin/cat", "security.capability") == _v2(CAP_DAC_OVERRIDE)
    assert os.getxattr(top / "bin/ping", "security.capability") == _v2(CAP_NET_RAW)
    assert os.getxattr(top / "data/secret", "user.x") == b"\x00binary\xffvalue"
    assert os.getxattr(top / "data", "user.dir") == b"on a dir"
    assert set(os.listxattr(top / "data/secret")) == {"user.x"}
    assert "trusted.overlay.opaque" not in os.listxattr(top / "data")
    log = " ".join(e.data.get("message", "") for e in engine.store.events(op.uuid) if e.type == "import_log")
    for name in ("trusted.overlay.opaque", "user.overlay.redirect", "security.selinux"):
        assert name in log, log
    # in a run, as uid 1000: the capability works (the bounding set keeps DAC_OVERRIDE, not NET_RAW)
    run = await sh(engine, "tag:caps", "/usr/capbin/cat /data/secret; grep CapEff /proc/self/status; "
                   "/usr/capbin/cat /proc/self/status | grep CapEff; cat /data/secret 2>&1; ls /data", uid=1000)
    lines = stdout(run).splitlines()
    assert lines[0] == "root only"
    assert lines[1].split() == ["CapEff:", "0000000000000000"]
    assert lines[2].split() == ["CapEff:", f"{1 << CAP_DAC_OVERRIDE:016x}"]
    assert "Permission denied" in lines[3]
    assert lines[4:] == ["lower", "secret"]  # /data is not opaque: the lower file shows


def _pax_layer(xattrs: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("bin/capped")
        data = busybox_bytes()
        info.size, info.mode = len(data), 0o755
        info.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()}
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def test_a_v3_capability_is_stored_as_v2(engine: Engine, tmp_path: Path) -> None:
    v3 = struct.pack("<IIIIII", 0x03000001, 1 << CAP_DAC_OVERRIDE, 0, 0, 0, 100_000)  # rootid of another host
    write_layout(tmp_path / "layout", [layer_tar(busybox_layer()), _pax_layer({"security.capability": v3})])
    op = await imported(engine, f"oci:{tmp_path / 'layout'}", tag="v3")
    assert op.status is OperationStatus.SUCCESS, op.error
    top = Path(engine.layer_path(engine.store.get_image(op.result_image_uuid).layers[-1]))
    assert os.getxattr(top / "bin/capped", "security.capability") == _v2(CAP_DAC_OVERRIDE)


@pytest.mark.parametrize(("xattrs", "message"), [
    ({"user.big": b"x" * ((64 << 10) + 1)}, "at most 65536"),
    ({"user." + "n" * 300: b"x"}, "longer than 255"),
    ({"user.a": b"x" * 3000, "user.b": b"y" * 3000}, "no room"),  # ext4: one 4 KiB block per file
])
async def test_oversized_xattrs_refuse_the_layer(engine: Engine, tmp_path: Path, xattrs: dict[str, bytes],
                                                 message: str) -> None:
    before = {p.name for p in engine.state.layers.iterdir()}
    write_layout(tmp_path / "layout", [layer_tar(busybox_layer()), _pax_layer(xattrs)])
    op = await imported(engine, f"oci:{tmp_path / 'layout'}")
    assert op.status is OperationStatus.FAILED and message in op.error and "bin/capped" in op.error, op.error
    assert {p.name for p in engine.state.layers.iterdir()} == before  # the new base layer went too
