"""What the log panes ask of the screen that owns the session (MainScreen): the operations it knows, their
output buffers (read from the engine on demand), the tags of the snapshots they made, and the colour each
operation keeps for the session. A Protocol, so the panes do not import the screen."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from contree_tui.tui.model import Lineage, Operation, OutputBuffer
from contree_tui.tui.op_labels import LABEL_WIDTH, ColourSlots, operation_labels
from contree_tui.tui.widgets.operations_table import OperationsTable


class LogHost(Protocol):
    lineage: Lineage
    buffers: dict[str, OutputBuffer]
    _followed: set[str]  # operations whose events a worker is reading

    @property
    def table(self) -> OperationsTable: ...

    def running_logs(self) -> list[tuple[str, OutputBuffer]]: ...

    def follow_existing(self, op: Operation) -> object: ...


SESSION_COLOURS = "_log_colour_slots"


def colour_slots(host: LogHost) -> ColourSlots:
    """The host's ColourSlots, made on first use: one per session, so the merged log and the split view give an
    operation the same colour."""
    slots = getattr(host, SESSION_COLOURS, None)
    if slots is None:
        slots = ColourSlots()
        setattr(host, SESSION_COLOURS, slots)
    return slots


def labels_of(host: LogHost, uuids: Iterable[str], width: int = LABEL_WIDTH) -> dict[str, str]:
    """How a person names these operations, seen together (op_labels.operation_labels); an operation the host
    does not know keeps its short uuid."""
    uuids = list(uuids)
    known = host.table.operations
    ops = [known[uuid] for uuid in uuids if uuid in known]

    def tag_of(uuid: str) -> str | None:
        snapshot = host.lineage.get(uuid)
        return snapshot.tag if snapshot else None

    labels = operation_labels(ops, tag_of=tag_of, width=width)
    return {uuid: labels.get(uuid, uuid[:8]) for uuid in uuids}


def log_of(host: LogHost, op: Operation) -> OutputBuffer:
    """The operation's buffer, its events read from now on if no worker reads them yet (a finished run
    listed at start-up has not been read)."""
    buffer = host.buffers.setdefault(op.uuid, OutputBuffer())
    if not buffer.complete and op.uuid not in host._followed and getattr(host, "backend", None) is not None:
        host._followed.add(op.uuid)  # now, not when the worker starts: the next call must not start another
        host.follow_existing(op)
    return buffer
