"""Imports from docker-archive: and oci-archive: through the engine's import operation (engine/image_import.py):
the images run and read as their layers say; layers shared with an earlier oci: import are reused, not
extracted again; a bad archive ends the operation FAILED with the source's message and leaves nothing."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Operation, OperationStatus
from tests.engine.helpers import sh, stdout
from tests.images.busybox_layouts import BASE_FILES, busybox_layer, whiteout_layout
from tests.images.oci_build import skopeo_copy, write_layout

SCRIPT = "ls /etc; echo --; ls /opt; echo --; cat /etc/changed /etc/kept; echo $GREETING"


async def imported(engine: Engine, url: str, **body: Any) -> Operation:
    op = engine.import_image({"registry": {"url": url}, **body})
    return await engine.wait(op.uuid)


def leftovers(engine: Engine) -> list[str]:
    imports = engine.state.root / "imports"
    return [str(p) for p in imports.rglob("*")] if imports.exists() else []


def phases(engine: Engine, op: Operation) -> list[tuple[str, int | None]]:
    return [(e.data["phase"], e.data["layer"]) for e in engine.store.events(op.uuid) if e.type == "import_progress"]


@pytest.mark.parametrize("scheme", ["docker-archive", "oci-archive"])
async def test_an_archive_imports_and_runs(engine: Engine, tmp_path: Path, scheme: str) -> None:
    whiteout_layout(tmp_path / "layout", env=["PATH=/bin", "GREETING=from the archive"])
    archive = tmp_path / "image.tar"
    skopeo_copy(f"oci:{tmp_path / 'layout'}:t1", f"{scheme}:{archive}:" + ("app:1" if scheme == "docker-archive"
                                                                           else "t1"))
    op = await imported(engine, f"{scheme}:{archive}", tag="archived:1")
    assert op.status is OperationStatus.SUCCESS, op.error
    image = engine.store.image_by_tag("archived:1")
    assert image.uuid == op.result_image_uuid and len(image.layers) == 2
    listing = stdout(await sh(engine, image.uuid, SCRIPT)).split("--\n")
    assert "gone" not in listing[0].split() and {"changed", "kept"} <= set(listing[0].split())
    assert listing[1].split() == ["new"]  # the base's /opt/old and /opt/sub: hidden by the opaque dir
    assert listing[2] == "new\nkept\nfrom the archive\n"
    assert leftovers(engine) == []


async def test_layers_shared_with_an_oci_import_are_reused(engine: Engine, tmp_path: Path) -> None:
    base = busybox_layer(**BASE_FILES)
    write_layout(tmp_path / "first", [base, {"etc/first": b"1\n"}], tag="t")
    write_layout(tmp_path / "second", [base, {"etc/second": b"2\n"}], tag="t")
    op = await imported(engine, f"oci:{tmp_path / 'first'}:t")
    assert op.status is OperationStatus.SUCCESS, op.error
    layers_before = set(os.listdir(engine.state.layers))
    for scheme in ("docker-archive", "oci-archive"):
        skopeo_copy(f"oci:{tmp_path / 'second'}:t", f"{scheme}:{tmp_path / scheme}.tar")
    op_docker = await imported(engine, f"docker-archive:{tmp_path / 'docker-archive'}.tar")
    assert op_docker.status is OperationStatus.SUCCESS, op_docker.error
    assert ("reuse", 0) in phases(engine, op_docker) and ("download", 0) not in phases(engine, op_docker)
    assert len(set(os.listdir(engine.state.layers)) - layers_before) == 1  # only the new top layer
    op_oci = await imported(engine, f"oci-archive:{tmp_path / 'oci-archive'}.tar")
    assert op_oci.status is OperationStatus.SUCCESS, op_oci.error
    assert {("reuse", 0), ("reuse", 1)} <= set(phases(engine, op_oci))  # same diff ids as the docker-archive's
    assert len(set(os.listdir(engine.state.layers)) - layers_before) == 1
    first = engine.store.get_image(op.result_image_uuid)
    for done in (op_docker, op_oci):
        image = engine.store.get_image(done.result_image_uuid)
        assert image.layers[0] == first.layers[0]
        assert stdout(await sh(engine, image.uuid, "cat /etc/second; test -e /etc/first || echo no")) == "2\nno\n"


async def test_a_bad_archive_fails_the_operation_cleanly(engine: Engine, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "text").write_text("no tar here\n" * 100)
    layout = tmp_path / "layout"
    whiteout_layout(layout, tag="a")
    whiteout_layout(layout, tag="b", env=["B=1"])
    skopeo_copy(f"oci:{layout}:a", f"docker-archive:{tmp_path / 'a.tar'}:a:1")
    with tarfile.open(tmp_path / "both.tar", "w") as tar:  # an oci-archive: the layout (two images) in a tar
        tar.add(layout, arcname=".")
    cases = {f"docker-archive:{tmp_path / 'missing.tar'}": "no such file",
             f"oci-archive:{tmp_path / 'fifo'}": "not a regular file",
             f"docker-archive:{tmp_path / 'text'}": "not a tar archive",
             f"docker-archive:{tmp_path / 'a.tar'}:b:1": "no image tagged 'b:1'",
             f"oci-archive:{tmp_path / 'both.tar'}": "holds 2 images; name one",
             f"oci-archive:{tmp_path / 'both.tar'}:c": "no image named 'c' in the layout (it holds: 'a', 'b')"}
    for url, message in cases.items():
        op = await imported(engine, url)
        assert op.status is OperationStatus.FAILED and message in (op.error or ""), (url, op.error)
    op = await imported(engine, f"oci-archive:{tmp_path / 'both.tar'}:b")
    assert op.status is OperationStatus.SUCCESS, op.error
    assert "B=1" in stdout(await sh(engine, op.result_image_uuid, "env"))
    assert leftovers(engine) == []
