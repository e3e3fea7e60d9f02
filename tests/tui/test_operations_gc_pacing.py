"""No full garbage collection while operations stream (gc_pacing.py): each one walked the 1,000,000 buffered
log lines of bench_tui_logs (80-100 ms of CPU) and CPython started one every 2-3 s, each landing on some key
press. Young collections go on; a run that streams for long still gets one a minute; the usual rule is back
once nothing runs, and the app leaves nothing frozen behind."""

from __future__ import annotations

import gc

from contree_tui.tui.gc_pacing import BUSY_COLLECTION, NEVER, CollectionPacer


def test_full_collections_wait_while_runs_stream() -> None:
    before = gc.get_threshold()
    busy, now = [False], [0.0]
    pacer = CollectionPacer(lambda: busy[0], clock=lambda: now[0])
    try:
        assert gc.get_freeze_count() > 0, "what the app holds once up is frozen"
        pacer.tick()
        assert gc.get_threshold() == before, "nothing running: the usual rule"

        busy[0] = True
        pacer.tick()
        assert gc.get_threshold() == (before[0], before[1], NEVER), "runs streaming: no automatic full collection"
        now[0] += BUSY_COLLECTION - 1
        pacer.tick()
        assert pacer.full_collections == 0
        now[0] += 1
        pacer.tick()
        assert pacer.full_collections == 1, "a run streaming for a minute still gets one"
        assert gc.get_threshold()[2] == NEVER

        busy[0] = False
        pacer.tick()
        assert gc.get_threshold() == before, "nothing running any more: the usual rule again"
        busy[0] = True
        pacer.tick()
    finally:
        pacer.close()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0, "the app leaves gc as it found it"
