"""Issue #11: hard links in layers. A link to an earlier entry of its own layer is a hard link on disk; a
link to a file of a lower layer (`docker commit` and some builders write them: the layer's tar names a
target it does not hold) refuses the import with an error naming the entry, and leaves nothing."""

from __future__ import annotations

from pathlib import Path

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import OperationStatus
from tests.engine.helpers import sh, stdout
from tests.engine.test_image_import import imported, layer_dirs, leftovers
from tests.images.busybox_layouts import busybox_layer
from tests.images.oci_build import Hardlink, write_layout


async def test_a_link_inside_its_layer_is_a_hard_link(engine: Engine, tmp_path: Path) -> None:
    write_layout(tmp_path / "layout", [busybox_layer(), {"opt/a": b"shared\n", "opt/b": Hardlink("opt/a")}])
    op = await imported(engine, f"oci:{tmp_path / 'layout'}", tag="links")
    assert op.status is OperationStatus.SUCCESS, op.error
    assert stdout(await sh(engine, "tag:links", "cat /opt/b; stat -c %h /opt/a")) == "shared\n2\n"


async def test_a_link_to_a_lower_layers_file_is_refused_by_name(engine: Engine, tmp_path: Path) -> None:
    before = layer_dirs(engine)
    write_layout(tmp_path / "layout", [busybox_layer(**{"etc/base": b"from below\n"}),
                                       {"opt/linked": Hardlink("etc/base")}])
    op = await imported(engine, f"oci:{tmp_path / 'layout'}")
    assert op.status is OperationStatus.FAILED
    assert "'opt/linked' is a hard link to 'etc/base'" in op.error and "lower layer" in op.error, op.error
    assert layer_dirs(engine) == before and leftovers(engine) == []
