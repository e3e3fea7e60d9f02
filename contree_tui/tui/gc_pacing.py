"""Full garbage collections kept out of the way while runs stream.

A full (generation 2) collection walks every tracked object and every item of every list, so its pause grows
with what the TUI holds: with 1,000,000 buffered log lines it took 80-100 ms of CPU (250-400 ms of wall clock
on the shared 2-core test VM), and while 20 runs streamed CPython started one every 2-3 s (its rule: when the
objects that survived into the old generation grew by 25%). Each landed on some key press: most of the
p95 key latency in bench/bench_tui_logs.py.

So while any operation runs, automatic full collections are off (young collections, which free most garbage,
go on); when none runs the usual rule is back. A run that streams for long still gets one full collection
every BUSY_COLLECTION seconds, so cyclic garbage cannot pile up behind a run that never ends. The objects that
exist once the app is up (Textual, Rich, the client: ~110,000) are frozen, so no full collection walks them.
No Textual here: the screen calls `tick` from a timer.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

NEVER = 2**30  # generation 2's threshold while runs stream: counted in young collections, never reached
BUSY_COLLECTION = 60.0  # s: at most this long without a full collection, streaming or not


class CollectionPacer:
    def __init__(self, busy: Callable[[], bool], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.busy = busy
        self.clock = clock
        self.paused_since: float | None = None
        self.full_collections = 0  # the ones this pacer ran (tests)
        self._gen2 = gc.get_threshold()[2]
        gc.freeze()  # what exists now lives as long as the app: no collection needs to walk it again

    def tick(self) -> None:
        """Call about once a second."""
        now = self.clock()
        busy = self.busy()
        if busy and self.paused_since is None:
            self.paused_since = now
            gen0, gen1, self._gen2 = gc.get_threshold()
            gc.set_threshold(gen0, gen1, NEVER)
        elif not busy and self.paused_since is not None:
            self.paused_since = None
            gen0, gen1, _never = gc.get_threshold()
            gc.set_threshold(gen0, gen1, self._gen2)
        elif busy and self.paused_since is not None and now - self.paused_since >= BUSY_COLLECTION:
            self.paused_since = now
            self.full_collections += 1
            gc.collect()

    def close(self) -> None:
        """Automatic full collections as they were and nothing frozen (the app is leaving: what it froze
        becomes garbage a collection must be able to reach, e.g. in a test run that starts many apps)."""
        if self.paused_since is not None:
            gen0, gen1, _never = gc.get_threshold()
            gc.set_threshold(gen0, gen1, self._gen2)
            self.paused_since = None
        gc.unfreeze()
