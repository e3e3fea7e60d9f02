"""`w` (wrap) in the TUI's log pane on a 50,000-line log: from the key event entering the app to the first frame
rendered after its action (bench_tui_logs.KeyClock, not Pilot.press, which waits for the whole process to idle),
against `k` (one line up, a frame and nothing else) pressed in the same log, in the same run.

Four logs, as runs print them: short ASCII lines, the same with a `✓` each (pytest-like: rich measured every
character of a line once one was outside its single-cell set), and both 4x as long (wider than the pane: every
line wraps, so its rows must be counted). Measured on this VM (2 shared cores), before log_rows.RowMap kept one
row per line while all lines fit and cell_width.line_cells counted only non-ASCII characters: w on 39 / 739 / 44 /
2,890 ms; after: 10 / 11 / 46 / 211 ms (k: 10-14 ms).
No engine: the app runs headless (`run_test`, 160x48) on the frozen test backend, the log fed by hand.
Goal: w <= 50 ms where the lines fit the pane (2x k at most).

    python3 bench/bench_tui_wrap.py [--lines 50000] [--presses 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_tui_logs import LINE, KeyClock

from bench.common import header, ms, verdict
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import OutputBuffer, Stream
from tests.tui.frozen import WORKING, FrozenBackend, frozen_clock
from tests.tui.helpers import until

SIZE = (160, 48)
GOAL = 0.050  # s, w on a log whose lines fit the pane
KINDS = {"ascii": LINE, "unicode": LINE + " ✓", "long ascii": LINE * 4, "long unicode": LINE * 4 + " ✓"}


async def presses(kind: str, lines: int, repeat: int) -> dict[str, list[float]]:
    app = ContreeApp(FrozenBackend(), working=WORKING, clock=frozen_clock)
    times: dict[str, list[float]] = {"k": [], "w on": [], "w off": []}
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.backend is not None, what="the frozen backend")
        buffer = OutputBuffer(max_lines=lines)
        line = KINDS[kind]
        for start in range(0, lines, 1000):
            buffer.feed(Stream.STDOUT, "".join(line.format(run=0, n=n) + "\n"
                                               for n in range(start, min(lines, start + 1000))), time.time())
        app.main.log_panel.show(kind, buffer)
        view = app.main.log_panel.view
        view.focus()
        await pilot.pause(0.3)
        clock = KeyClock(app, view)
        await clock.press("k")  # the first frame after the log is shown: not a press's
        await clock.press("G")
        for _ in range(repeat):
            for key, name in (("k", "k"), ("w", "w on"), ("w", "w off"), ("G", "")):  # G: back to the bottom
                took = await clock.press(key)
                if name:
                    times[name].append(took)
                await asyncio.sleep(0.03)
    return times


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--presses", type=int, default=8)
    args = parser.parse_args()
    header(f"bench_tui_wrap: w on a {args.lines:,}-line log, key -> frame (median of {args.presses})")
    ok = True
    for kind in KINDS:
        times = await presses(kind, args.lines, args.presses)
        k, on, off = (statistics.median(times[name]) for name in ("k", "w on", "w off"))
        fits = not kind.startswith("long")
        if fits:
            ok = ok and on <= GOAL
        print(f"{kind:13} ({len(KINDS[kind])} chars)  k {ms(k)}  w on {ms(on)} ({on / k:.1f}x k)  "
              f"w off {ms(off)} ({off / k:.1f}x k)" + (f"  {verdict(on <= GOAL)}" if fits else ""), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
