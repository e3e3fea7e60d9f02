"""Which runs are "the last batch": those started within BATCH_WINDOW of the newest one. A `:parallel` starts
all its branches at once (measured: 3 branches within ~0.1 s of each other on a loaded 2-core VM), so the
batch is that `:parallel`; a run typed alone is a batch of one. The split view (`v`) and the merged log (`m`)
open on it when nothing is running, so both show a batch that has just finished. No Textual here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from contree_tui.tui.model import Operation

BATCH_WINDOW = 5.0  # s: runs started this close to the newest one are its batch


def started(op: Operation) -> float:
    """When it was created (unknown: before everything)."""
    return op.created_at.timestamp() if isinstance(op.created_at, datetime) else float("-inf")


def newest_batch(ops: Iterable[Operation]) -> list[Operation]:
    """The newest run and those started within BATCH_WINDOW before it, oldest first; a newest run without a
    start time is a batch alone (not every other run without one)."""
    ordered = sorted(ops, key=started)
    if not ordered:
        return []
    newest = started(ordered[-1])
    if newest == float("-inf"):
        return ordered[-1:]
    return [op for op in ordered if newest - started(op) <= BATCH_WINDOW]
