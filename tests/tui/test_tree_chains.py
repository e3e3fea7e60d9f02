"""A chain of snapshots (each the only child of the one before) is drawn flat under its first snapshot;
indentation grows only at branch points, and a run that makes a branch mid-chain moves the rest under it."""

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


async def test_a_chain_is_flat_and_a_branch_in_it_nests() -> None:
    app = ContreeApp(ChainBackend(CHAIN), working=CHAIN[-1], clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.main
        tree = await shown_tree(pilot, app, CHAIN[-1])
        base = tree.node_for(BASE)
        assert base is not None
        assert [n.data for n in base.children] == CHAIN, "the whole chain one level under busybox"

        # a second child of snapshot 3: it becomes a branch point; 4..6 move under 3 with the new one
        branch = uid(0x99)
        screen.lineage.add(Snapshot(branch, CHAIN[2], None, NOW, uid(0x99, "c")))
        tree.add_snapshot(branch)
        await pilot.pause()
        assert [n.data for n in base.children] == CHAIN[:3]
        third = tree.node_for(CHAIN[2])
        assert third is not None and [n.data for n in third.children] == [CHAIN[3], branch]
        fourth = tree.node_for(CHAIN[3])
        assert fourth is not None and [n.data for n in fourth.children] == CHAIN[4:], "the rest of that chain"
        await until(pilot, lambda: tree.cursor_uuid == CHAIN[-1], what="the cursor kept on its snapshot")

        # a run on the branch's tip continues its chain, after it
        tip = uid(0x9A)
        screen.lineage.add(Snapshot(tip, branch, None, NOW, uid(0x9A, "c")))
        tree.add_snapshot(tip)
        await pilot.pause()
        branch_node = tree.node_for(branch)
        assert branch_node is not None and branch_node.allow_expand, "collapsed, it can open now"
        assert tree.reveal(tip) is not None
        assert [n.data for n in branch_node.children] == [tip]


LONG = [uid(n, "d") for n in range(1, 1501)]  # busybox -> 1 -> ... -> 1500 (not "a": uid(0xB0) is busybox)


async def test_a_long_chain_shows_its_newest_window_and_more_on_demand() -> None:
    window = snapshot_tree.WINDOW
    app = ContreeApp(ChainBackend(LONG), working=LONG[-1], clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.main
        tree = await shown_tree(pilot, app, LONG[-1])
        base = tree.node_for(BASE)
        assert base is not None
        kids = [n.data for n in base.children]
        assert kids[0].startswith(snapshot_tree.MORE) and kids[1:] == LONG[-window:], "the newest window only"
        assert f"… {len(LONG) - window:,} earlier snapshots" in str(tree.render_label(base.children[0], *styles()))

        # a run at the tip still lands in the window
        tip = uid(0x5000)
        screen.lineage.add(Snapshot(tip, LONG[-1], None, NOW, uid(0x5000, "c")))
        tree.add_snapshot(tip)
        assert [n.data for n in base.children][-1] == tip

        # enter on the "… more" line shows CHUNK more
        tree.move_cursor(base.children[0])
        await pilot.press("enter")
        await pilot.pause()
        kids = [n.data for n in base.children]
        still_hidden = len(LONG) - window - snapshot_tree.CHUNK
        assert still_hidden > 0 and kids[0].startswith(snapshot_tree.MORE)
        assert kids[1:] == [*LONG[still_hidden:], tip]

        # jumping to a snapshot outside the window moves the window to it
        assert tree.jump_to(LONG[0])
        kids = [n.data for n in base.children]
        assert LONG[0] in kids and kids[-1].startswith(snapshot_tree.MORE), "the first ones, and later ones folded"
        assert len(kids) <= window + 2


def styles():  # type: ignore[no-untyped-def]
    from rich.style import Style

    return Style(), Style()
