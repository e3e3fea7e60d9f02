"""How a run's outcome reads, against a real engine: the ✓/✗ beside a tree node is the outcome of the run that
made that node (not of the newest run started from it), and a non-zero exit reads the same in the log's last
line, the operations table and the command log; a run cut off by an engine kill lasts as long in the TUI as in
`contree-tui ops`."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from contree_client.models import OperationStatus
from rich.style import Style

from contree_tui.client.embedded import engine_pid, ensure_engine
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.command_log import Outcome
from contree_tui.tui.model import Stream
from contree_tui.tui.screens.main import MainScreen
from contree_tui.tui.widgets.operations_table import format_duration
from tests.client.conftest import served_engine
from tests.tui.helpers import loaded, run_and_wait, run_in_bar, until

SIZE = (140, 40)


def tree_label(screen: MainScreen, uuid: str) -> str:
    node = screen.tree.node_for(uuid)
    assert node is not None, f"{uuid[:8]} is in the tree"
    return screen.tree.render_label(node, Style(), Style()).plain


async def test_a_node_shows_the_outcome_of_the_run_that_made_it(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        good = await run_and_wait(pilot, screen, "echo made-ok > /outcome-ok")
        await until(pilot, lambda: "echo made-ok" in tree_label(screen, good), what="the command beside the node")
        assert "✓ echo made-ok" in tree_label(screen, good), tree_label(screen, good)

        # A run from `good` whose command fails: it makes a node of its own, and that node carries the ✗;
        # `good` was made by a command that succeeded and keeps its ✓.
        bad = await run_and_wait(pilot, screen, "echo made-bad > /outcome-bad; exit 3")
        await until(pilot, lambda: "made-bad" in tree_label(screen, bad), what="the failing run's command")
        assert "✗ echo made-bad" in tree_label(screen, bad), tree_label(screen, bad)
        assert "✓ echo made-ok" in tree_label(screen, good), (
            f"the outcome of the run that made it, not of the run started from it: {tree_label(screen, good)}")


async def test_a_non_zero_exit_reads_the_same_in_the_log_the_table_and_the_command_log(
        tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        made = await run_and_wait(pilot, screen, "touch /exit-three; exit 3")
        op = next(op for op in screen.table.operations.values() if op.result == made)
        view = screen.log_panel.view
        await until(pilot, lambda: view.buffer is not None and view.buffer.complete, what="the whole log")
        stream, footer = view.buffer.lines[-1]  # type: ignore[union-attr]
        status = str(screen.table.get_cell(op.uuid, "status"))
        entry = screen.command_log.entries[-1]
        assert stream is Stream.META and footer.startswith("── ✗ exit 3 · "), footer
        assert status == "✗ exit 3", status
        assert entry.result.startswith("✗ exit 3 · ") and entry.outcome is Outcome.FAILED, entry.result
        for said in (footer, status, entry.result):
            assert "SUCCESS" not in said.upper() and "exited" not in said, f"one wording: {said}"

        # exit 0 in the same words, with ✓
        await run_and_wait(pilot, screen, "touch /exit-zero")
        await until(pilot, lambda: view.buffer is not None and view.buffer.complete, what="the second log")
        assert view.buffer.lines[-1][1].startswith("── ✓ exit 0 · ")  # type: ignore[union-attr]
        assert screen.command_log.entries[-1].result.startswith("✓ exit 0 · ")


@pytest.fixture
def own_engine() -> Iterator[Path]:
    """An engine of this test's own, in its own state dir: this test kills it."""
    yield from served_engine("cto-")


async def test_a_run_cut_off_by_an_engine_kill_has_the_duration_the_cli_shows(own_engine: Path,
                                                                                tmp_path: Path) -> None:
    app = ContreeApp(state_dir=own_engine, folder=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        known = set(screen.table.operations)
        await run_in_bar(pilot, "for i in $(seq 1 400); do echo n$i; sleep 0.05; done")
        await until(pilot, lambda: set(screen.table.operations) - known, what="the run's row")
        [uuid] = set(screen.table.operations) - known
        op = screen.table.operations[uuid]
        await until(pilot, lambda: any(text == "n20" for _, text in screen.buffers[uuid].lines),
                    what="a second of output")
        pid = engine_pid(own_engine)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await until(pilot, lambda: op.status.is_terminal(), timeout=60, what="the run to end")
        assert op.status is OperationStatus.FAILED
        assert screen.backend is not None
        record = await screen.backend.operation(uuid)  # what `contree-tui ops` prints (cli/render.py)
        assert record.duration is not None and record.duration >= 1.0, record.duration
        assert op.duration is not None and abs(op.duration - record.duration) < 0.01, (op.duration, record.duration)
        shown = str(screen.table.get_cell(uuid, "duration"))
        # the same figure to the hundredth: the TUI's comes from the event's whole milliseconds, the CLI's from
        # the record's float, so 2.465 and 2.46499 may print one hundredth apart (CI: 2.47s and 2.46s)
        said = {format_duration(record.duration), format_duration(op.duration)}
        assert shown in said and shown != "0.00s", (shown, said)
        assert any(text in screen.buffers[uuid].lines[-1][1] for text in said), "and the log's last line"
        # the TUI restarts the engine on demand: that start ends here, not after the fixture's stop (an engine
        # launched then outlived its state dir)
        await ensure_engine(own_engine)
