"""Issue #11: `rootfs:` imports, content-addressed. A tarball's sha256 is its source digest (the same file
again is the same image, at once, with no extraction), its uncompressed sha256 its layer's diff id (the
same tar compressed otherwise is a new image on the same layer, and an OCI layer with that diff id reuses
it); a directory has no digest, so each import makes a new image. Tarballs go through the OCI layer
extraction, so zstd works (it did not before) alongside gzip, bzip2 and xz."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import OperationStatus
from tests.engine.helpers import sh, stdout
from tests.engine.test_image_import import imported
from tests.images.busybox_layouts import busybox_bytes
from tests.images.oci_build import write_layout


def _tree(root: Path, text: str = "hello\n") -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/hello").write_text(text)
    (root / "bin/busybox").write_bytes(busybox_bytes())
    os.chmod(root / "bin/busybox", 0o755)
    for applet in ("sh", "cat"):
        os.symlink("busybox", root / "bin" / applet)
    return root


def _tar(tree: Path, path: Path) -> bytes:
    """An uncompressed tar of `tree` (deterministic: sorted, fixed mtimes), written to `path`."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted([tree, *tree.rglob("*")]):
            info = tar.gettarinfo(entry, arcname=str(entry.relative_to(tree)) or ".")
            info.mtime = 1_700_000_000
            if info.isreg():
                with open(entry, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    return path.read_bytes()


def _events(engine: Engine, op_uuid: str, kind: str) -> list[dict]:
    return [e.data for e in engine.store.events(op_uuid) if e.type == kind]


@pytest.mark.parametrize("compression", ["zstd", "gzip", "bzip2", "xz"])
async def test_a_compressed_tarball_runs(engine: Engine, tmp_path: Path, compression: str) -> None:
    raw = tmp_path / "rootfs.tar"
    _tar(_tree(tmp_path / "tree"), raw)
    subprocess.run([compression, "-q", "-k", str(raw)], check=True)
    packed = next(p for p in tmp_path.iterdir() if p.name.startswith("rootfs.tar.") and p != raw)
    op = await imported(engine, f"rootfs:{packed}", tag="packed")
    assert op.status is OperationStatus.SUCCESS, op.error
    assert stdout(await sh(engine, "tag:packed", "cat /etc/hello")) == "hello\n"


async def test_the_same_tarball_is_the_same_image_and_its_layer_is_shared(engine: Engine, tmp_path: Path) -> None:
    raw = tmp_path / "rootfs.tar"
    data = _tar(_tree(tmp_path / "tree"), raw)
    subprocess.run(["gzip", "-k", "-n", str(raw)], check=True)
    gz = tmp_path / "rootfs.tar.gz"
    first = await imported(engine, f"rootfs:{raw}", tag="first")
    assert first.status is OperationStatus.SUCCESS, first.error
    image = engine.store.get_image(first.result_image_uuid)
    # the source digest is the file's sha256, the layer's diff id the tar's
    assert engine.store.image_for_source("sha256:" + hashlib.sha256(data).hexdigest()).uuid == image.uuid
    assert engine.store.layer_by_diff_id("sha256:" + hashlib.sha256(data).hexdigest())[0] == image.layers[0]
    layers_before = {p.name for p in engine.state.layers.iterdir()}
    again = await imported(engine, f"rootfs:{raw}", tag="again")
    assert again.status is OperationStatus.SUCCESS and again.result_image_uuid == image.uuid
    assert not [e for e in _events(engine, again.uuid, "import_progress") if e["phase"] == "extract"]
    assert any("already imported" in e["message"] for e in _events(engine, again.uuid, "import_log"))
    assert set(engine.store.get_image(image.uuid).tags) == {"first", "again"}
    # gzip of the same tar: another source digest, so another image, on the same layer
    packed = await imported(engine, f"rootfs:{gz}", tag="gz")
    assert packed.status is OperationStatus.SUCCESS, packed.error
    other = engine.store.get_image(packed.result_image_uuid)
    assert other.uuid != image.uuid and other.layers == image.layers
    assert {p.name for p in engine.state.layers.iterdir()} == layers_before  # the extracted copy went
    # an OCI image whose layer is that tar reuses the layer too, without extracting it
    write_layout(tmp_path / "layout", [data])
    oci = await imported(engine, f"oci:{tmp_path / 'layout'}")
    assert oci.status is OperationStatus.SUCCESS, oci.error
    assert engine.store.get_image(oci.result_image_uuid).layers == image.layers
    assert [e["phase"] for e in _events(engine, oci.uuid, "import_progress") if e["layer"] == 0] == ["reuse"]
    # a changed file is a new image
    (tmp_path / "tree/etc/hello").write_text("changed\n")
    _tar(tmp_path / "tree", raw)
    changed = await imported(engine, f"rootfs:{raw}", tag="changed")
    assert changed.status is OperationStatus.SUCCESS and changed.result_image_uuid != image.uuid
    assert stdout(await sh(engine, "tag:changed", "cat /etc/hello")) == "changed\n"
    assert stdout(await sh(engine, "tag:first", "cat /etc/hello")) == "hello\n"


async def test_a_directory_makes_a_new_image_each_time(engine: Engine, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    ops = [await imported(engine, f"rootfs:{tree}") for _ in range(2)]
    assert all(op.status is OperationStatus.SUCCESS for op in ops), [op.error for op in ops]
    assert ops[0].result_image_uuid != ops[1].result_image_uuid
    assert any("each import makes a new image" in e["message"] for e in _events(engine, ops[1].uuid, "import_log"))
