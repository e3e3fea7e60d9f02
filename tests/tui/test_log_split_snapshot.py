"""SVG snapshot of the split view (`v`) at 160x45: three :parallel branches of the working snapshot (one done,
one failed, one still printing) and the run that was already going, each in its pane. The data and clock are
frozen (tests/tui/frozen.py plus the branches below), and the snapshot waits for every pane's whole log.

After an intended change of the look: `pytest tests/tui/test_log_split_snapshot.py --snapshot-update`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from contree_client.models import OperationStatus
from textual.pilot import Pilot

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.data import Completed, Exited, OpEvent, Output
from contree_tui.tui.model import Lineage, Operation, Stream
from contree_tui.tui.screens.split_logs import SplitLogsScreen
from tests.tui.frozen import OPERATIONS, SNAPSHOTS, WORKING, FrozenBackend, ago, frozen_clock, uid
from tests.tui.helpers import until


def _epochs(lr: str, count: int) -> str:
    return "".join(f"epoch {n}/5  lr={lr}  loss={1.0 / (n + float(lr) * 10):.4f}\n" for n in range(1, count + 1))


BRANCHES = [
    (Operation(uuid=uid(0x21, "c"), command="./train.sh --lr 0.1", image=WORKING, status=OperationStatus.SUCCESS,
               created_at=ago(seconds=40)),
     [Output(Stream.STDOUT, _epochs("0.1", 5) + "saved model.pt (4.2 MB)\n"), Exited(0),
      Completed(OperationStatus.SUCCESS, uid(0x21), None, 12.5)]),
    (Operation(uuid=uid(0x22, "c"), command="./train.sh --lr 0.01", image=WORKING, status=OperationStatus.SUCCESS,
               created_at=ago(seconds=40)),
     [Output(Stream.STDOUT, _epochs("0.01", 2)),
      Output(Stream.STDERR, "Traceback (most recent call last):\n  File \"train.py\", line 41, in <module>\n"
                            "FloatingPointError: loss is NaN\n"), Exited(1),
      Completed(OperationStatus.SUCCESS, uid(0x22), None, 6.25)]),
    (Operation(uuid=uid(0x23, "c"), command="./train.sh --lr 0.001", image=WORKING,
               status=OperationStatus.EXECUTING, created_at=ago(seconds=40)),
     [Output(Stream.STDOUT, _epochs("0.001", 3))]),
]
EVENTS = {op.uuid: events for op, events in BRANCHES}


class FrozenBranches(FrozenBackend):
    async def lineage(self) -> Lineage:
        return Lineage(SNAPSHOTS, [*OPERATIONS, *(op for op, _events in BRANCHES)])

    async def recent_operations(self, limit: int = 30) -> list[Operation]:
        return [*await super().recent_operations(limit), *(Operation(**vars(op)) for op, _events in BRANCHES)]

    async def follow(self, operation_uuid: str, after: int | None = None) -> AsyncIterator[tuple[int, OpEvent]]:
        if operation_uuid not in EVENTS:
            async for item in super().follow(operation_uuid, after):
                yield item
            return
        for number, event in enumerate(EVENTS[operation_uuid], start=1):
            yield number, event
        if not any(isinstance(event, Completed) for event in EVENTS[operation_uuid]):
            await asyncio.Event().wait()  # still running


async def split_view(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, ContreeApp)
    screen = app.main
    await until(pilot, lambda: screen.backend is not None and len(screen.table.operations) == len(OPERATIONS) + 3,
                what="the operations")
    await pilot.press("v")
    await until(pilot, lambda: isinstance(app.screen, SplitLogsScreen) and len(app.screen.panes) == 4,
                what="four panes")
    split = app.screen
    assert isinstance(split, SplitLogsScreen)
    expected = {uid(0x21, "c"): 7, uid(0x22, "c"): 6, uid(0x23, "c"): 3, uid(7, "c"): 2}  # lines, outcome too
    await until(pilot, lambda: all(pane.view.line_count == expected[pane.uuid]
                                   and pane.view.virtual_size.height == expected[pane.uuid]
                                   and "·" in str(pane.border_title) for pane in split.panes),
                what="every pane's whole log")
    await until(pilot, lambda: all("✓" in str(p.border_title) or "✗" in str(p.border_title)
                                   for p in split.panes if p.uuid in (uid(0x21, "c"), uid(0x22, "c"))),
                what="the outcomes in the titles")
    await pilot.pause(0.2)


def test_split_view(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = ContreeApp(FrozenBranches(), working=WORKING, clock=frozen_clock)
    assert snap_compare(app, terminal_size=(160, 45), run_before=split_view)
