"""Imports the TUI did not start, against real engines: one made by another client before the TUI opened is a
row of the operations table (its state, its reference and tag), its log is the engine's lines when selected,
and its image a tagged root of the tree whose detail view says where it came from. An import whose engine
dies under it (killed mid-import, the TUI starting it again) ends FAILED with the engine's reason instead of
"executing" forever."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid as uuidlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from contree_client.models import OperationStatus
from textual.widgets import Static

from contree_tui.client.connection import connect, embedded_target
from contree_tui.client.embedded import engine_pid, ensure_engine
from contree_tui.client.image_import import ImportSpec, follow_import, start_import
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import Operation, Stream
from contree_tui.tui.screens.snapshot_detail import SnapshotDetailScreen
from tests.client.conftest import served_engine, stop_engine
from tests.images.busybox_layouts import busybox_layer, zeros_layout
from tests.images.fault_proxy import FaultProxy
from tests.images.oci_build import File, write_layout
from tests.tui.helpers import loaded, run_in_bar, until

SIZE = (160, 45)


@pytest.fixture
def own_engine() -> Iterator[Path]:
    """An engine of this test's own: this test kills it."""
    yield from served_engine("cti-")


@pytest.fixture
async def stalled_registry() -> AsyncIterator[FaultProxy]:
    """A registry on 127.0.0.1 that accepts connections and never answers: an import of it stays executing."""
    proxy = await FaultProxy(upstream="127.0.0.1:9", stall_all=True).start()
    try:
        yield proxy
    finally:
        await proxy.stop()


async def import_elsewhere(engine_dir: Path, ref: str, tag: str) -> str:
    """What `contree-tui import` in another terminal does: the import's operation, once it ended."""
    connection = await connect(embedded_target(engine_dir))
    try:
        operation = await start_import(connection, ImportSpec(ref=ref, tag=tag))
        result = await follow_import(connection, operation)
        assert result.succeeded, result
        return operation
    finally:
        await connection.aclose()


async def test_an_import_made_before_the_tui_is_a_row_with_its_log_and_a_tagged_root(
        tui_engine_dir: Path, tmp_path: Path) -> None:
    marker = uuidlib.uuid4().hex[:8]
    write_layout(tmp_path / "layout", [busybox_layer(), {"etc/marker": File(f"{marker}\n".encode())}], tag="t1",
                 env=["PATH=/bin"])
    ref, tag = f"oci:{tmp_path / 'layout'}:t1", f"elsewhere-{marker}:1"
    operation = await import_elsewhere(tui_engine_dir, ref, tag)

    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        await until(pilot, lambda: operation in table.operations, what="the import's row")
        op: Operation = table.operations[operation]
        assert op.is_import and op.status is OperationStatus.SUCCESS and op.result, op
        assert op.command == f"import {ref} as {tag}", op.command
        assert str(table.get_cell(operation, "images")) == f"→ {op.result[:8]}"
        assert str(table.get_cell(operation, "status")).endswith("success")

        table.select(operation)
        await until(pilot, lambda: screen.buffers.get(operation) is not None and screen.buffers[operation].complete,
                    what="the import's log")
        lines = list(screen.buffers[operation].lines)
        assert (Stream.STDOUT, f"tagged {tag}") in lines, lines
        assert lines[-1][0] is Stream.META and lines[-1][1].startswith("── SUCCESS"), lines[-1]
        assert op.status is OperationStatus.SUCCESS, "reading its log again leaves it as it was"

        snapshot = screen.tree.find_tag(tag)
        assert snapshot is not None and snapshot.uuid == op.result
        node = screen.tree.node_for(snapshot.uuid)
        assert node is not None and node.parent is screen.tree.root, "a root of the tree"

        screen.inspect_snapshot(snapshot.uuid)
        await until(pilot, lambda: isinstance(app.screen, SnapshotDetailScreen), what="the detail view")
        header = app.screen.query_one("#detail-header", Static)
        await until(pilot, lambda: "added" in str(header.render()), what="the size in the header")
        assert f"imported from {ref} as {tag}" in str(header.render()), str(header.render())
        assert "made by" not in str(header.render())
        await pilot.resize_terminal(80, 24)  # too narrow for one line: it wraps, the size stays in view
        await until(pilot, lambda: header.size.height >= 2, what="the header to wrap")


@pytest.mark.parametrize(("where", "how", "who"), [("resolving", "kill", "tui"), ("extracting", "kill", "tui"),
                                                  ("resolving", "stop", "tui"), ("resolving", "kill", "elsewhere"),
                                                  ("extracting", "kill", "elsewhere")])
async def test_an_import_whose_engine_restarts_ends_failed_with_the_reason(
        own_engine: Path, tmp_path: Path, stalled_registry: FaultProxy, where: str, how: str, who: str) -> None:
    """`resolving`: a registry that never answers, no event flows; `extracting`: a layer of 4 GiB of zeros,
    progress events flowing (≤10/s) when the engine dies. `kill`: a crash (the restarted engine's recovery
    fails it); `stop`: `engine stop`. `tui`: started with `:import`; `elsewhere`: by another client before
    the TUI opened, still running (its row is followed from the listing)."""
    ref = (stalled_registry.url("stalls/forever", "t1") if where == "resolving"
           else f"oci:{zeros_layout(tmp_path / 'big')}:big")
    reason = "engine restarted" if how == "kill" else "engine stopped"
    started = None
    if who == "elsewhere":
        connection = await connect(embedded_target(own_engine))
        try:
            started = await start_import(connection, ImportSpec(ref=ref))
        finally:
            await connection.aclose()
    app = ContreeApp(state_dir=own_engine, folder=tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await loaded(pilot)
        if started is None:
            await run_in_bar(pilot, f":import {ref}")

        def the_import() -> Operation | None:
            return next((op for op in screen.table.operations.values() if op.is_import), None)

        await until(pilot, lambda: (op := the_import()) is not None and op.status is OperationStatus.EXECUTING,
                    what="the import to execute")
        if where == "resolving":
            await until(pilot, lambda: stalled_registry.seen, what="the registry asked")
        else:  # the bar moves: its events are read (for `elsewhere` too, though nobody selected its row)
            await until(pilot, lambda: (op := the_import()) is not None and op.step.startswith("extract")
                        and (op.progress or 0) > 0.5, what="the extraction under way")
        op = the_import()
        assert op is not None and (started is None or op.uuid == started)
        first = engine_pid(own_engine)
        assert first is not None
        if how == "kill":
            os.kill(first, signal.SIGKILL)
        else:
            await asyncio.to_thread(stop_engine, own_engine)  # in a thread: the app shares this event loop

        await until(pilot, lambda: not op.running, timeout=90, what="the import to end")
        assert op.status is OperationStatus.FAILED and reason in (op.error or ""), op
        assert "failed" in str(screen.table.get_cell(op.uuid, "status"))
        lines = screen.buffers[op.uuid].lines
        assert lines[-1][0] is Stream.META and reason in lines[-1][1], lines[-1]
        if who == "tui":
            await until(pilot, lambda: any("cannot import" in (n.title or "") for n in app._notifications),
                        what="the failure's toast")
        # the TUI restarts the engine on demand: that start ends here, not after the fixture's stop (CI: an
        # engine launched then outlived its state dir)
        await ensure_engine(own_engine)


async def test_an_import_another_client_makes_while_the_tui_runs_shows_up_without_a_reload(
        tui_engine_dir: Path, tmp_path: Path) -> None:
    """`contree-tui import` in another terminal: its row, then its image a root of the tree, no `R` pressed."""
    marker = uuidlib.uuid4().hex[:8]
    write_layout(tmp_path / "layout", [busybox_layer(), {"etc/marker": File(f"{marker}\n".encode())}], tag="t1",
                 env=["PATH=/bin"])
    ref, tag = f"oci:{tmp_path / 'layout'}:t1", f"meanwhile-{marker}:1"
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        operation = await import_elsewhere(tui_engine_dir, ref, tag)
        await until(pilot, lambda: operation in screen.table.operations, what="the import's row")
        op = screen.table.operations[operation]
        assert op.is_import and op.command == f"import {ref} as {tag}", op
        await until(pilot, lambda: tag in screen.tree.tags(), what="its image in the tree")
        snapshot = screen.tree.find_tag(tag)
        assert snapshot is not None and snapshot.uuid == op.result and snapshot.imported
        node = screen.tree.node_for(snapshot.uuid)
        assert node is not None and node.parent is screen.tree.root
