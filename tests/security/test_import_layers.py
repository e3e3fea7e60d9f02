"""Issue #11: hostile OCI layers. A layer blob is image content: it is decompressed, hashed and extracted
by the confined import helper (oci_layer.py), and only directories it reports are marked opaque, by the
engine, through openat2 beneath the layer's root. Each test imports a layout over a real engine:

- absolute names, `..` names, a symlink out of the layer then a file written through it, a hard link to
  /etc/shadow and to a host file: the host never changes; what lands, lands inside the layer (or the
  layer is refused with a clear error and nothing is left);
- device nodes are dropped, a hard link to a whiteout entry is dropped with it, nothing named `.wh.*`
  lands as a file, a whiteout naming `..` or `.` refuses the layer;
- an opaque marker under a symlink that leaves the layer (`evil -> /host-dir`, `evil/.wh..wh..opq`) never
  makes the engine set an xattr on a host directory;
- the helper creates a whiteout (mknod of char 0/0) as the sandboxes' root without CAP_MKNOD, through the
  seccomp filter.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Operation, OperationStatus
from tests.engine.helpers import sh, stdout
from tests.images.busybox_layouts import busybox_layer
from tests.images.oci_build import layer_tar, write_layout


def _file(name: str, data: bytes = b"planted\n", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def _special(name: str, kind: bytes, linkname: str = "", major: int = 0, minor: int = 0,
             ) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.devmajor, info.devminor, info.mode = kind, linkname, major, minor, 0o666
    return info, None


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


async def _import(engine: Engine, tmp_path: Path, top: bytes, name: str = "layout") -> Operation:
    layout = tmp_path / name
    write_layout(layout, [layer_tar(busybox_layer()), top])
    op = engine.import_image({"registry": {"url": f"oci:{layout}"}})
    return await engine.wait(op.uuid)


def _snapshot(root: Path) -> dict[str, Any]:
    return {str(p): (p.lstat().st_mode, p.lstat().st_mtime_ns, p.lstat().st_nlink,
                     os.listxattr(p, follow_symlinks=False),
                     p.read_bytes() if p.is_file() else None) for p in [root, *root.rglob("*")]}


@pytest.fixture
def host_dir(tmp_path: Path) -> Iterator[Path]:
    """A host directory the layers aim at, with a file in it; the test checks it never changes."""
    target = tmp_path / "host-dir"
    target.mkdir()
    (target / "victim").write_bytes(b"host data\n")
    shadow = os.lstat("/etc/shadow")
    before = _snapshot(target)
    yield target
    assert _snapshot(target) == before, "a layer changed a host directory"
    after = os.lstat("/etc/shadow")
    assert (after.st_nlink, after.st_mtime_ns, after.st_mode) == (shadow.st_nlink, shadow.st_mtime_ns, shadow.st_mode)


def _assert_clean(engine: Engine, before: set[str]) -> None:
    assert {p.name for p in engine.state.layers.iterdir()} == before
    imports = engine.state.root / "imports"
    assert not imports.exists() or not list(imports.iterdir())


def _escapes(host: Path) -> dict[str, list[tuple[tarfile.TarInfo, bytes | None]]]:
    victim = str(host / "victim")
    return {
        "absolute": [_file(str(host / "abs-planted"))],
        "dot-dot": [_file("../" * 16 + str(host)[1:] + "/dotdot-planted"), _file("a/../../../x-planted")],
        # etc2 -> the host dir, then a file through it (tarfile opens it "wb" following the link)
        "symlinked-dir": [_special("etc2", tarfile.SYMTYPE, str(host)), _file("etc2/through-link")],
        "relative-symlink": [_special("up", tarfile.SYMTYPE, "../" * 16 + str(host)[1:]), _file("up/through-up")],
        # a hard link to a host file and to /etc/shadow, then members written over them
        "hard-link": [_special("shadow", tarfile.LNKTYPE, "/etc/shadow"), _special("victim", tarfile.LNKTYPE, victim),
                      _file("victim", b"overwritten\n"), _file("shadow", b"overwritten\n")],
        "symlinked-file": [_special("victim", tarfile.SYMTYPE, victim), _file("victim", b"overwritten\n")],
    }


@pytest.mark.parametrize("attack", ["absolute", "dot-dot", "symlinked-dir", "relative-symlink", "hard-link",
                                    "symlinked-file"])
async def test_escapes_stay_inside_the_layer(engine: Engine, tmp_path: Path, host_dir: Path, attack: str) -> None:
    before = {p.name for p in engine.state.layers.iterdir()}
    op = await _import(engine, tmp_path, _tar(_escapes(host_dir)[attack]))
    if op.status is OperationStatus.FAILED:  # refused: a clear answer, nothing left
        assert "Traceback" not in op.error and op.error, op.error
        _assert_clean(engine, before)
        return
    assert op.status is OperationStatus.SUCCESS, op.error
    image = engine.store.get_image(op.result_image_uuid)
    top = Path(engine.layer_path(image.layers[-1]))
    planted = [p for p in top.rglob("*") if p.is_file() and not p.is_symlink()
               and p.read_bytes() in (b"planted\n", b"overwritten\n")]
    assert planted, "the members landed nowhere"


async def test_device_nodes_and_links_to_them_are_dropped(engine: Engine, tmp_path: Path) -> None:
    top = _tar([_special("dev-sda", tarfile.BLKTYPE, major=8, minor=0),
                _special("mem", tarfile.CHRTYPE, major=1, minor=1),
                _special("mem-link", tarfile.LNKTYPE, "mem"), _file("kept")])
    op = await _import(engine, tmp_path, top)
    assert op.status is OperationStatus.SUCCESS, op.error
    run = await sh(engine, op.result_image_uuid, "ls / | sort")
    names = stdout(run).split()
    assert "kept" in names and not {"dev-sda", "mem", "mem-link"} & set(names)


async def test_whiteout_entries_never_land_as_files(engine: Engine, tmp_path: Path) -> None:
    top = _tar([_file("etc/.wh.passwd", b""), _special("etc/linked", tarfile.LNKTYPE, "etc/.wh.passwd"),
                _file("x/.wh.dir/inside"), _file(".wh..wh.plnk/123"), _file("etc/real")])
    op = await _import(engine, tmp_path, top)
    assert op.status is OperationStatus.SUCCESS, op.error
    image = engine.store.get_image(op.result_image_uuid)
    top_dir = Path(engine.layer_path(image.layers[-1]))
    assert not [p for p in top_dir.rglob("*") if p.name.startswith(".wh.")]
    assert not (top_dir / "etc/linked").exists() and (top_dir / "etc/real").is_file()
    whiteout = os.lstat(top_dir / "etc/passwd")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0  # made by the helper: no CAP_MKNOD there


@pytest.mark.parametrize("name", ["etc/.wh...", "etc/.wh..", ".wh.", "etc/.wh."])
async def test_a_whiteout_naming_no_file_refuses_the_layer(engine: Engine, tmp_path: Path, name: str) -> None:
    before = {p.name for p in engine.state.layers.iterdir()}
    op = await _import(engine, tmp_path, _tar([_file("etc/ok"), _file(name, b"")]))
    assert op.status is OperationStatus.FAILED and "names no file" in op.error, op.error
    _assert_clean(engine, before)
    assert engine.store.list_images() == []


async def test_an_opaque_marker_through_a_symlink_never_reaches_the_host(engine: Engine, tmp_path: Path,
                                                                         host_dir: Path) -> None:
    before = {p.name for p in engine.state.layers.iterdir()}
    top = _tar([_special("evil", tarfile.SYMTYPE, str(host_dir)), _file("evil/.wh..wh..opq", b"")])
    op = await _import(engine, tmp_path, top)
    assert op.status is OperationStatus.FAILED and "opaque" in op.error, op.error
    _assert_clean(engine, before)
    assert "trusted.overlay.opaque" not in os.listxattr(host_dir)


async def test_an_opaque_marker_in_a_new_directory_marks_it(engine: Engine, tmp_path: Path) -> None:
    op = await _import(engine, tmp_path, _tar([_file("fresh/.wh..wh..opq", b"")]))
    assert op.status is OperationStatus.SUCCESS, op.error
    image = engine.store.get_image(op.result_image_uuid)
    assert os.getxattr(Path(engine.layer_path(image.layers[-1])) / "fresh", "trusted.overlay.opaque") == b"y"


@pytest.mark.parametrize("attack", ["through-lower-symlink", "through-lower-dotdot", "into-layer-symlink"])
async def test_hard_links_to_lower_files_stay_inside_the_image(engine: Engine, tmp_path: Path, host_dir: Path,
                                                               attack: str) -> None:
    """A hard link to a lower layer's file is copied by a helper that sees the layers below at /lower and the
    new layer at /layer, each name resolved inside its own view (RESOLVE_IN_ROOT): a lower symlink to a host
    directory, `..` past the root, or a symlink in the new layer naming a host directory, reach no host
    file: the import fails naming the entry, or the copy lands inside the layer; the host never changes."""
    before = {p.name for p in engine.state.layers.iterdir()}
    lower = busybox_layer()
    lower_tar = _tar([_special("hostlink", tarfile.SYMTYPE, str(host_dir)), _file("etc/base", b"lower\n")])
    top = {
        "through-lower-symlink": [_special("stolen", tarfile.LNKTYPE, "hostlink/victim")],
        "through-lower-dotdot": [_special("stolen", tarfile.LNKTYPE, "../" * 12 + str(host_dir)[1:] + "/victim")],
        "into-layer-symlink": [_special("out", tarfile.SYMTYPE, str(host_dir)),
                               _special("out/planted", tarfile.LNKTYPE, "etc/base")],
    }[attack]
    layout = tmp_path / "layout"
    write_layout(layout, [layer_tar(lower), lower_tar, _tar(top)])
    op = await engine.wait(engine.import_image({"registry": {"url": f"oci:{layout}"}}).uuid)
    assert op.status is OperationStatus.FAILED, "a host file was reachable"
    assert "Traceback" not in op.error and ("'stolen'" in op.error or "'out/planted'" in op.error), op.error
    _assert_clean(engine, before)
