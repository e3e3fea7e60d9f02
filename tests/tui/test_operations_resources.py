"""The operations table's CPU and memory columns against a real engine: "—" while a run goes, its rusage
(from the exit event) once it ends; operations listed at load carry theirs from the server."""

from __future__ import annotations

from pathlib import Path

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.widgets.operations_table import PENDING, format_cpu, format_memory
from tests.tui.helpers import loaded, run_in_bar, until

SIZE = (200, 40)  # wide enough that no column gives way to a long command (another test's run may be listed)


def test_cpu_and_memory_formats() -> None:
    assert format_cpu(0.0123) == "0.01s" and format_cpu(None) == ""
    assert format_memory(900) == "900K" and format_memory(1536) == "1.5M" and format_memory(40 * 1024) == "40M"
    assert format_memory(3 * 1024 * 1024) == "3.0G"


async def test_cpu_and_memory_columns_fill_when_a_run_ends(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        await run_in_bar(pilot, "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; sleep 3; echo spun")
        await until(pilot, lambda: any(op.running for op in table.operations.values() if "echo spun" in op.command),
                    what="the run to start")
        op = next(op for op in table.operations.values() if op.running and "echo spun" in op.command)  # ours
        assert str(table.get_cell(op.uuid, "cpu")) == PENDING and str(table.get_cell(op.uuid, "memory")) == PENDING
        await until(pilot, lambda: not op.running and op.exit_code is not None, what="the run to end")
        assert op.cpu_seconds is not None and op.cpu_seconds > 0, "the busy loop used CPU"
        assert op.memory_kb is not None and op.memory_kb > 0
        await until(pilot, lambda: str(table.get_cell(op.uuid, "cpu")) == format_cpu(op.cpu_seconds),
                    what="the cpu cell")
        assert str(table.get_cell(op.uuid, "memory")) == format_memory(op.memory_kb)

    # a new session lists the same run with the server's figures
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await until(pilot, lambda: op.uuid in screen.table.operations, what="the run listed")
        listed = screen.table.operations[op.uuid]
        assert listed.cpu_seconds is not None and listed.memory_kb is not None
        assert str(screen.table.get_cell(op.uuid, "cpu")) not in ("", PENDING)


async def test_a_timed_out_run_reads_as_timed_out(tui_engine_dir: Path, tmp_path: Path) -> None:
    """A timeout is a SUCCESS with state.timed_out (as hosted Contree says it): the table and the log say
    "timed out", not "exited -1"."""
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        client = screen.backend.client  # type: ignore[union-attr]
        spawned = await client.spawn_instance("echo partial; sleep 30", "tag:busybox:latest", shell=True,
                                              timeout=1, disposable=False)
        await client.wait_operation(spawned.uuid, timeout=30)
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)  # a new session lists it from the server
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        await until(pilot, lambda: spawned.uuid in table.operations, what="the run listed")
        op = table.operations[spawned.uuid]
        assert op.timed_out and op.exit_code == -1
        assert str(table.get_cell(op.uuid, "status")).endswith("timed out")
        table.select(op.uuid)
        await until(pilot, lambda: (b := screen.buffers.get(op.uuid)) is not None and b.complete,
                    what="the log read")
        buffer = screen.buffers[op.uuid]
        assert "timed out" in buffer.lines[-1][1] and "exit -1" in buffer.lines[-1][1]
