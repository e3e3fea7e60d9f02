"""`:import` against a real engine and `oci:` layouts the test builds: two imports side by side, each a row of
the operations table with its progress, its log holding the engine's lines; each image then a root of the
tree with its tag, and commands run in it. A failed import is a toast and a FAILED row; the palette opens
the command bar on `:import`."""

from __future__ import annotations

import os
import uuid as uuidlib
from pathlib import Path

from contree_client.models import OperationStatus

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import Operation, Stream
from contree_tui.tui.widgets.operations_table import progress_cell
from tests.images.busybox_layouts import busybox_layer
from tests.images.oci_build import File, write_layout
from tests.tui.helpers import loaded, run_and_wait, run_in_bar, until
from tests.tui.test_palette import palette

SIZE = (160, 45)


def layout(path: Path, marker: str) -> Path:
    """An image of its own (a random 1 MiB file: no layer to reuse, so bytes are fetched) that says `marker`."""
    extra = {"etc/marker": File(f"{marker}\n".encode()), "etc/noise": File(os.urandom(1 << 20))}
    write_layout(path, [busybox_layer(), extra], tag="t1", compression="gzip", env=["PATH=/bin"])
    return path


def test_the_progress_cell_is_a_bar_and_a_percentage() -> None:
    assert progress_cell(0.5, 12) == "██████░░░░░░  50%"
    assert progress_cell(1.0, 4) == "████ 100%" and progress_cell(0.0, 4) == "░░░░   0%"


async def test_two_imports_run_side_by_side_and_become_tagged_roots(tui_engine_dir: Path, tmp_path: Path) -> None:
    marker = uuidlib.uuid4().hex[:8]
    refs = {f"imp-{name}-{marker}:t1": layout(tmp_path / name, f"{name}-{marker}") for name in ("a", "b")}
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        for tag, path in refs.items():  # the second starts while the first runs: each in its own worker
            await run_in_bar(pilot, f":import oci:{path}:t1 {tag}")

        def imports() -> list[Operation]:  # this test's: the session's engine lists other tests' imports too
            return [op for op in table.operations.values() if op.is_import and marker in op.command]

        await until(pilot, lambda: len(imports()) == 2, what="both import rows")
        await until(pilot, lambda: all(not op.running for op in imports()), what="both imports to end")
        for op in imports():
            assert op.status is OperationStatus.SUCCESS, op.error
            assert op.progress == 1.0 and op.step == "commit", (op.progress, op.step)
            assert str(table.get_cell(op.uuid, "images")) == f"→ {op.result[:8]}"  # type: ignore[index]
            assert op.image is None and op.result is not None

        for tag in refs:  # each image: a root of the tree, with its tag
            await until(pilot, lambda tag=tag: tag in screen.tree.tags(), what=f"{tag} in the tree")
            snapshot = screen.tree.find_tag(tag)
            assert snapshot is not None and screen.lineage.parent_of(snapshot.uuid) is None
            node = screen.tree.node_for(snapshot.uuid)
            assert node is not None and node.parent is screen.tree.root
        said = [e.result for e in screen.command_log.entries if e.text.startswith(":import")]
        assert len(said) == 2 and all(r.startswith("imported oci:") for r in said), said

        first = next(op for op in imports() if "imp-a" in op.command)
        table.select(first.uuid)
        await pilot.pause()
        lines = list(screen.buffers[first.uuid].lines)
        assert (Stream.STDOUT, f"tagged imp-a-{marker}:t1") in lines, lines
        assert lines[-1][0] is Stream.META and lines[-1][1].startswith("── SUCCESS")

        image = screen.tree.find_tag(f"imp-a-{marker}:t1")
        assert image is not None
        # the same layout again with another tag: the same image, now with both tags in the tree
        await run_in_bar(pilot, f":import oci:{refs[f'imp-a-{marker}:t1']}:t1 again-{marker}")
        await until(pilot, lambda: f"again-{marker}" in screen.tree.tags(), what="the second tag in the tree")
        again = screen.tree.find_tag(f"again-{marker}")
        assert again is not None and again.uuid == image.uuid and f"imp-a-{marker}:t1" in screen.tree.tags()
        screen.position.move_to(image.uuid)
        await run_and_wait(pilot, screen, "cat /etc/marker > /seen; cat /seen")
        await until(pilot, lambda: f"a-{marker}" in screen.log_panel.view.text_lines(), what="the marker")

        # while an import runs its row shows a bar (drawn from the model: a real import here ends too fast)
        table.upsert(Operation(uuid="feed" * 8 + "0000", command="import x", image=None, kind="image_import",
                               status=OperationStatus.EXECUTING, progress=0.25, step="download 1/2"))
        assert str(table.get_cell("feed" * 8 + "0000", "images")) == progress_cell(0.25)
        assert str(table.get_cell("feed" * 8 + "0000", "command")) == "import x · download 1/2"
        assert str(table.get_cell("feed" * 8 + "0000", "status")).endswith(" download")


async def test_a_failed_import_is_a_toast_and_a_failed_row(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        await run_in_bar(pilot, f":import oci:{tmp_path / 'missing'}:t1")
        await until(pilot, lambda: any("cannot import" in (n.title or "") for n in app._notifications),
                    what="a toast")
        toast = next(n for n in app._notifications if "cannot import" in (n.title or ""))
        assert toast.severity == "error" and "ended failed" in toast.message, toast.message
        op = next(op for op in screen.table.operations.values() if op.is_import and "missing" in op.command)
        assert op.status is OperationStatus.FAILED and op.error


async def test_the_palette_opens_the_bar_on_import(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await palette(pilot, "import an image", ":import REF")
        bar = screen.query_one("#command-bar")
        await until(pilot, lambda: app.focused is bar, what="the command bar focused")
        assert bar.value == ":import "  # type: ignore[attr-defined]
