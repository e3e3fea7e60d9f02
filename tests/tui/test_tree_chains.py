"""The tree in the app, on frozen data: a chain of snapshots is one straight lane (each child on the row after
its parent, not drawn as its sibling), a run that branches mid-chain forks the older rest into a lane of its
own, and a long chain folds its middle into one "… N earlier snapshots" row that opens on demand."""

from __future__ import annotations

from datetime import timedelta

from textual.pilot import Pilot

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import Lineage, Operation, Snapshot
from contree_tui.tui.widgets import snapshot_tree
from contree_tui.tui.widgets.snapshot_tree import SnapshotTree
from tests.tui.frozen import BASE, NOW, FrozenBackend, frozen_clock, uid
from tests.tui.helpers import until

SIZE = (130, 34)
CHAIN = [uid(n) for n in range(1, 7)]  # busybox -> 1 -> 2 -> ... -> 6


class ChainBackend(FrozenBackend):
    """busybox, then `chain`: each snapshot the only child of the one before, the newest last."""

    def __init__(self, chain: list[str]) -> None:
        super().__init__()
        self.chain = chain

    async def lineage(self) -> Lineage:
        snapshots = [Snapshot(BASE, None, "busybox:latest", NOW - timedelta(days=1))]
        parent = BASE
        for n, uuid in enumerate(self.chain, start=1):
            snapshots.append(Snapshot(uuid, parent, None, NOW - timedelta(seconds=len(self.chain) + 60 - n),
                                      uid(n, "c")))
            parent = uuid
        return Lineage(snapshots)

    async def recent_operations(self, limit: int = 30) -> list[Operation]:
        return []


async def shown_tree(pilot: Pilot[None], app: ContreeApp, working: str) -> SnapshotTree:
    """The main screen's tree once it is drawn with the cursor on `working`."""
    screen = app.main
    await until(pilot, lambda: screen.query("#tree") and screen.tree.cursor_uuid == working, what="the tree")
    return screen.tree


def drawn(tree: SnapshotTree) -> list[str]:
    """Every row as drawn: its lane cells and mark, then the short uuid (or the fold's words)."""
    lines = []
    for line in range(tree.last_line + 1):
        node = tree.get_node_at_line(line)
        assert node is not None
        label = tree.render_label(node, *styles()).plain
        lines.append(label.split(" ✓")[0].split("  ")[0].rstrip())
    return lines


async def test_a_chain_is_one_lane_and_a_branch_in_it_forks_the_older_rest() -> None:
    app = ContreeApp(ChainBackend(CHAIN), working=CHAIN[-1], clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.main
        tree = await shown_tree(pilot, app, CHAIN[-1])
        short = [u[:8] for u in CHAIN]
        assert [line.split(" ")[0] for line in drawn(tree)] == ["◆", "●", "●", "●", "●", "●", "◉"], drawn(tree)
        assert [line[-8:] for line in drawn(tree)[1:]] == short, "each child on the row after its parent"

        # a second child of snapshot 3: 4..6 fork off into lane 2, the new one continues 3's lane
        branch = uid(0x99)
        screen.lineage.add(Snapshot(branch, CHAIN[2], None, NOW, uid(0x99, "c")))
        tree.add_snapshot(branch)
        await pilot.pause()
        assert drawn(tree)[3:] == [f"● {short[2]}", f"├─● {short[3]}", f"│ ● {short[4]}", f"│ ◉ {short[5]}",
                                   f"● {branch[:8]}"], drawn(tree)
        await until(pilot, lambda: tree.cursor_uuid == CHAIN[-1], what="the cursor kept on its snapshot")

        # a run on the branch's tip continues its lane, on the next row
        tip = uid(0x9A)
        screen.lineage.add(Snapshot(tip, branch, None, NOW, uid(0x9A, "c")))
        tree.add_snapshot(tip)
        await pilot.pause()
        assert drawn(tree)[-2:] == [f"● {branch[:8]}", f"● {tip[:8]}"]
        row = tree.row_of(tip)
        assert row is not None and row.parent == branch

        # a third child of the branch point: the newest continues the lane, the one before forks off
        third = uid(0x9B)
        screen.lineage.add(Snapshot(third, CHAIN[2], None, NOW + timedelta(seconds=1), uid(0x9B, "c")))
        tree.add_snapshot(third)
        assert drawn(tree)[-3:] == [f"├─● {branch[:8]}", f"│ ● {tip[:8]}", f"● {third[:8]}"], drawn(tree)


LONG = [uid(n, "d") for n in range(1, 1501)]  # busybox -> 1 -> ... -> 1500 (not "a": uid(0xB0) is busybox)


async def test_a_long_chain_shows_its_newest_window_and_more_on_demand() -> None:
    window = snapshot_tree.WINDOW
    app = ContreeApp(ChainBackend(LONG), working=LONG[-1], clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.main
        tree = await shown_tree(pilot, app, LONG[-1])
        hidden = len(LONG) - 1 - window  # the last always has a row; the fold sits between busybox and the window
        assert tree.shown == {BASE, *LONG[-window - 1:]}, "the newest window only"
        assert drawn(tree)[1] == f"┊ … {hidden:,} earlier snapshots (enter: 1,000 more)"

        # a run at the tip still lands in the window
        tip = uid(0x5000)
        screen.lineage.add(Snapshot(tip, LONG[-1], None, NOW, uid(0x5000, "c")))
        tree.add_snapshot(tip)
        assert tree.node_for(tip) is not None and drawn(tree)[-1] == f"● {tip[:8]}"

        # enter on the "… more" row shows CHUNK more; the cursor stays on the row, which still folds the rest
        tree.move_cursor(tree.get_node_at_line(1))
        await pilot.press("enter")
        await pilot.pause()
        still_hidden = hidden + 1 - snapshot_tree.CHUNK
        assert drawn(tree)[1] == f"┊ … {still_hidden:,} earlier snapshots (enter: {still_hidden:,} more)"
        assert tree.node_for(LONG[still_hidden]) is not None and tree.node_for(LONG[still_hidden - 1]) is None

        # jumping to a snapshot inside the fold moves the window to it
        assert tree.jump_to(LONG[1])
        assert tree.node_for(LONG[1]) is not None and "later snapshots" in drawn(tree)[-2], drawn(tree)[-3:]
        assert len(drawn(tree)) <= window + 5
        await until(pilot, lambda: tree.cursor_uuid == LONG[1], what="the cursor on the jump's target")


def styles():  # type: ignore[no-untyped-def]
    from rich.style import Style

    return Style(), Style()
