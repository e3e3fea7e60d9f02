"""The TUI's snapshot tree with 10,000 images: time to first paint (goal <= 1 s), against a flat 10,000-line
Textual list started the same way in the same process.

No engine: the app runs headless (`run_test`, 130x34) on the frozen test backend with a synthetic lineage,
so what is timed is the TUI's own work — Lineage build, tree nodes, the reveal of the working snapshot, the
first frame. Three shapes: 8 chains of 1,250 from busybox (the working snapshot at the tip of one: 1,250
ancestors opened), one chain 10,000 deep (10,000 opened), and 10,000 siblings. Then `/` filters on the
8-chain tree (1 in 8 matches), and 20 runs land on the working snapshot of the 8-chain tree one after
another (what each new snapshot costs the tree while parallel runs end).

    python3 bench/bench_tui_tree.py [--images N] [--repeat R]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual.app import App, ComposeResult
from textual.widgets import OptionList

from bench.common import header, median, ms, verdict
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import Lineage, Operation, Snapshot
from tests.tui.frozen import BASE, NOW, FrozenBackend, frozen_clock, uid

SIZE = (130, 34)
GOAL = 1.0  # seconds to the first paint of a 10,000-image tree


def make_snapshots(images: int, shape: str) -> tuple[list[Snapshot], str]:
    """`images` snapshots under busybox in `shape` (chains8 | deep | flat); returns them and the working one."""
    snapshots = [Snapshot(BASE, None, "busybox:latest", NOW - timedelta(days=3))]
    chains = {"chains8": 8, "deep": 1, "flat": images}[shape]
    tips = [BASE] * chains
    for n in range(1, images + 1):
        chain = (n - 1) % chains
        snapshots.append(Snapshot(uid(n, "d"), tips[chain], f"t{n}" if n % 997 == 0 else None,
                                  NOW - timedelta(seconds=images - n), uid(n, "c")))
        tips[chain] = uid(n, "d")  # not "a": uid(0xB0) is busybox
    return snapshots, tips[0]


class BigBackend(FrozenBackend):
    """The frozen backend with a synthetic lineage; commands answer at once for the shown nodes."""

    def __init__(self, snapshots: list[Snapshot]) -> None:
        super().__init__()
        self.snapshots = snapshots

    async def lineage(self) -> Lineage:
        return Lineage(self.snapshots)

    async def recent_operations(self, limit: int = 30) -> list[Operation]:
        return []

    async def commands(self, operation_uuids: list[str]) -> dict[str, str]:
        return {op: f"echo step {op[1:8]} >> /steps" for op in operation_uuids}


async def first_paint_tree(snapshots: list[Snapshot], working: str) -> float:
    app = ContreeApp(BigBackend(snapshots), working=working, clock=frozen_clock)
    started = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        while True:
            screen = app.main
            if screen.query("#tree") and screen.tree.cursor_uuid == working:
                break
            await asyncio.sleep(0.005)
        await pilot.pause()  # the frame with the tree drawn
        elapsed = time.perf_counter() - started
        assert screen.tree.node_for(working) is not None
    return elapsed


class FlatList(App[None]):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def compose(self) -> ComposeResult:
        yield OptionList(*self.lines)


async def first_paint_flat(count: int) -> float:
    lines = [f"a{n:07x}  {n % 60}m  echo step {n} >> /steps" for n in range(count)]
    app = FlatList(lines)
    started = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        while app.query_one(OptionList).option_count < count:
            await asyncio.sleep(0.005)
        await pilot.pause()
        elapsed = time.perf_counter() - started
    return elapsed


async def filter_time(snapshots: list[Snapshot], working: str, query: str) -> tuple[float, int]:
    app = ContreeApp(BigBackend(snapshots), working=working, clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        tree = app.main.tree
        while not (app.main.query("#tree") and tree.cursor_uuid == working):
            await asyncio.sleep(0.005)
        await pilot.pause()
        started = time.perf_counter()
        tree.set_filter(query)
        await pilot.pause()
        elapsed = time.perf_counter() - started
        return elapsed, len(tree.shown)


async def add_times(snapshots: list[Snapshot], working: str, runs: int = 20) -> list[float]:
    """Seconds per new snapshot put into the tree (a child of the working one, as a :parallel branch)."""
    app = ContreeApp(BigBackend(snapshots), working=working, clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        tree = app.main.tree
        while not (app.main.query("#tree") and tree.cursor_uuid == working):
            await asyncio.sleep(0.005)
        await pilot.pause()
        times = []
        for n in range(runs):
            made = uid(0x90000 + n, "e")
            app.main.lineage.add(Snapshot(made, working, None, NOW + timedelta(seconds=n), uid(0x90000 + n, "f")))
            started = time.perf_counter()
            tree.add_snapshot(made)
            _ = tree.last_line  # the line list rebuilt, as the next frame would
            times.append(time.perf_counter() - started)
            await pilot.pause()
        assert all(tree.node_for(uid(0x90000 + n, "e")) is not None for n in range(runs))
        return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    images, repeat = args.images, args.repeat

    header(f"TUI snapshot tree: first paint of {images:,} images ({SIZE[0]}x{SIZE[1]}, headless, median of {repeat})")
    flat = [asyncio.run(first_paint_flat(images)) for _ in range(repeat)]
    print(f"baseline: a flat {images:,}-line OptionList, start to first paint: {ms(median(flat))}", flush=True)

    ok = True
    for shape, what in (("chains8", "8 chains from busybox, working at a tip"),
                        ("deep", f"one chain {images:,} deep, working at the tip"),
                        ("flat", f"{images:,} siblings")):
        snapshots, working = make_snapshots(images, shape)
        started = time.perf_counter()
        Lineage(snapshots)
        build = time.perf_counter() - started
        times = [asyncio.run(first_paint_tree(snapshots, working)) for _ in range(repeat)]
        paint = median(times)
        ok = ok and paint <= GOAL
        print(f"{shape:8} ({what}): first paint {ms(paint)} = {paint / median(flat):.2f}x the flat list "
              f"(lineage build alone {ms(build)}) {verdict(paint <= GOAL)}", flush=True)

    snapshots, working = make_snapshots(images, "chains8")
    results = [asyncio.run(filter_time(snapshots, working, "t99")) for _ in range(repeat)]
    filtered = median([r[0] for r in results])
    print(f"/ filter 't99' (2 tags) on the 8-chain tree: {ms(filtered)}, {results[0][1]:,} nodes built",
          flush=True)
    added = sorted(asyncio.run(add_times(snapshots, working)))
    print(f"20 new snapshots on the 8-chain tree's working one: median {ms(median(added))}, "
          f"max {ms(added[-1])} each", flush=True)
    print(f"goal: first paint <= {GOAL:.0f} s for every shape: {verdict(ok)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
