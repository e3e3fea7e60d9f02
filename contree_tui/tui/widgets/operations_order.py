"""Which operations the table shows and in what order: `/` filters (a substring of the command, the uuid or
the status words), `s` cycles the sorts. No Textual here."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from datetime import datetime

from contree_tui.tui.model import Operation
from contree_tui.tui.outcome import outcome_words


class Sort(enum.Enum):
    """`s` goes down this list and back to the top. STARTED is the table as it always was: a log, the newest
    at the bottom, where the cursor goes."""

    STARTED = "started"
    NEWEST = "newest first"
    RUNNING = "running first"
    DURATION = "longest first"
    STATUS = "status"

    def next(self) -> Sort:
        members = list(Sort)
        return members[(members.index(self) + 1) % len(members)]


# A status sort puts what needs a look first: failures, then runs going, then the rest.
_STATUS_RANK = {"failed": 0, "running": 1, "ok": 2}


def status_words(op: Operation) -> str:
    """What the filter matches a status against: the server's word and the table's (`executing`,
    `✗ exit 3`, `timed out`)."""
    return f"{op.status.value} {outcome_words(op)}".lower()


def matches(op: Operation, text: str) -> bool:
    """`text` (any case) is in the command, the uuid or the status words."""
    needle = text.strip().lower()
    return not needle or needle in op.command.lower() or needle in op.uuid.lower() or needle in status_words(op)


def ordered(ops: Iterable[Operation], sort: Sort, *, elapsed: Callable[[Operation], float | None],
            kind: Callable[[Operation], str]) -> list[Operation]:
    """`ops` (in the order they arrived) in `sort`'s order; ties keep the arrival order. `elapsed`: an
    operation's duration so far (running ones count up); `kind`: "ok", "failed" or "running"."""
    arrived = list(ops)
    position = {op.uuid: index for index, op in enumerate(arrived)}
    if sort is Sort.STARTED:
        return arrived
    if sort is Sort.NEWEST:
        return sorted(arrived, key=lambda op: (_started(op), position[op.uuid]), reverse=True)
    if sort is Sort.RUNNING:
        return sorted(arrived, key=lambda op: (not op.running, position[op.uuid]))
    if sort is Sort.DURATION:
        return sorted(arrived, key=lambda op: (-(elapsed(op) or 0.0), position[op.uuid]))
    return sorted(arrived, key=lambda op: (_STATUS_RANK.get(kind(op), 3), position[op.uuid]))


def _started(op: Operation) -> float:
    """When it was created (unknown: before everything)."""
    created: datetime | None = op.created_at
    return created.timestamp() if created is not None else float("-inf")
