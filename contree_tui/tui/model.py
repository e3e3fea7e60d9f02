"""What the TUI shows, kept outside the widgets: snapshots and their tree, operations, the working position,
and each operation's output buffer. No Textual and no network here, so it is cheap to test and to replace.

`Lineage` and `Position` are stand-ins until client/lineage.py and client/position.py land; the widgets only
use the small surface below, so switching is a change in data.py and here, not in the widgets.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from contree_client.models import OperationStatus
from rich.cells import cell_len


@dataclass(frozen=True)
class Snapshot:
    """An image as a node of the tree: `parent` is the image its producing operation ran on."""

    uuid: str
    parent: str | None = None
    tag: str | None = None
    created_at: datetime | None = None
    operation: str | None = None  # the operation that produced it (None for imported/base images)

    @property
    def short(self) -> str:
        return self.uuid[:8]

    @property
    def name(self) -> str:
        """How the status bar and dialogs name it: the tag when it has one, else the short uuid."""
        return f"{self.tag} ({self.short})" if self.tag else self.short


@dataclass
class Operation:
    """One run, updated live while it streams. `image` is the snapshot it ran on, `result` the one it made."""

    uuid: str
    command: str
    image: str | None
    status: OperationStatus = OperationStatus.PENDING
    result: str | None = None
    exit_code: int | None = None
    duration: float | None = None  # seconds, once known
    error: str | None = None
    created_at: datetime | None = None
    disposable: bool = False
    cpu_seconds: float | None = None  # user + system CPU time, once the run has ended
    memory_kb: int | None = None  # peak resident set size (max_rss), once the run has ended

    @property
    def running(self) -> bool:
        return not self.status.is_terminal()


class Lineage:
    """The snapshot tree: parent and children of every known image, and the latest operation run on each."""

    def __init__(self, snapshots: Iterable[Snapshot] = (), operations: Iterable[Operation] = ()) -> None:
        self.snapshots: dict[str, Snapshot] = {}
        self._children: dict[str | None, list[str]] = {}
        self.latest_op: dict[str, Operation] = {}  # image uuid -> the newest operation run on it
        for snapshot in snapshots:
            self.add(snapshot)
        for op in operations:
            self.note_operation(op)

    def add(self, snapshot: Snapshot) -> None:
        if snapshot.uuid in self.snapshots:
            return
        self.snapshots[snapshot.uuid] = snapshot
        self._children.setdefault(snapshot.parent, []).append(snapshot.uuid)

    def note_operation(self, op: Operation) -> None:
        if not op.image:
            return
        known = self.latest_op.get(op.image)
        if known is None or known.uuid == op.uuid or _newer(op, known):
            self.latest_op[op.image] = op

    def get(self, uuid: str | None) -> Snapshot | None:
        return self.snapshots.get(uuid) if uuid else None

    def parent_of(self, uuid: str) -> str | None:
        snapshot = self.snapshots.get(uuid)
        return snapshot.parent if snapshot else None

    def children_of(self, uuid: str | None) -> list[Snapshot]:
        """Oldest first, the order they were made in."""
        kids = [self.snapshots[u] for u in self._children.get(uuid, ())]
        return sorted(kids, key=lambda s: (s.created_at.timestamp() if s.created_at else 0.0, s.uuid))

    def roots(self) -> list[Snapshot]:
        """Images whose parent is unknown here (base images, imports, or a parent from another namespace)."""
        orphans = [s for s in self.snapshots.values() if s.parent is None or s.parent not in self.snapshots]
        return sorted(orphans, key=lambda s: (s.tag is None, s.tag or "", s.uuid))

    def ancestors(self, uuid: str) -> list[str]:
        """From the root down to (excluding) `uuid`."""
        chain: list[str] = []
        seen = {uuid}
        parent = self.parent_of(uuid)
        while parent and parent in self.snapshots and parent not in seen:
            chain.append(parent)
            seen.add(parent)
            parent = self.parent_of(parent)
        return list(reversed(chain))

    def by_tag(self, tag: str) -> Snapshot | None:
        return next((s for s in self.snapshots.values() if s.tag == tag), None)

    def __len__(self) -> int:
        return len(self.snapshots)


def _newer(a: Operation, b: Operation) -> bool:
    if a.created_at and b.created_at:
        return a.created_at > b.created_at
    return a.created_at is not None


class Position:
    """The working snapshot plus where `u` (rollback to the parent) and `U` (forward again) lead, in memory
    (data.StoredPosition keeps the real one in client/position.py's store; this one serves frozen tests)."""

    def __init__(self, working: str | None = None) -> None:
        self.working = working
        self._forward: list[str] = []  # most recent rollback last

    def move_to(self, uuid: str) -> None:
        """A new working snapshot chosen or made by the user: forward history no longer applies."""
        if uuid != self.working:
            self.working = uuid
            self._forward.clear()

    def rollback(self, parent: str) -> None:
        if self.working:
            self._forward.append(self.working)
        self.working = parent

    def forward(self) -> str | None:
        """Back to the snapshot the last rollback left; None when there is nowhere to go."""
        if not self._forward:
            return None
        self.working = self._forward.pop()
        return self.working

    def record_run(self, source: str, result: str | None, *, operation: str, command: str,
                   exit_code: int | None) -> bool:
        """Move to a run's new result if the position is still where the run started; True if it moved."""
        if self.working != source or result is None or result == source:
            return False
        self.move_to(result)
        return True

    @property
    def can_forward(self) -> bool:
        return bool(self._forward)

    @property
    def forward_target(self) -> str | None:
        return self._forward[-1] if self._forward else None


class Stream(enum.Enum):
    STDOUT = "stdout"
    STDERR = "stderr"
    META = "meta"  # lines the TUI adds: the exit summary, errors


@dataclass
class OutputBuffer:
    """An operation's output as lines, held here rather than in a widget (the log view renders only what is
    visible). Chunks arrive split anywhere; each stream keeps its unfinished line until its newline comes.

    Past `max_lines` the oldest lines are dropped in blocks (`dropped` counts them), so memory stays bounded
    however much a run prints and the log view can keep its place."""

    max_lines: int = 50_000
    lines: list[tuple[Stream, str]] = field(default_factory=list)
    dropped: int = 0
    width: int = 0  # widest line in cells, for horizontal scrolling
    last_event_id: int | None = None
    complete: bool = False  # the whole log has been read (the operation ended and its events drained)
    _partial: dict[Stream, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Lines ever appended: grows monotonically, unlike len(lines)."""
        return self.dropped + len(self.lines)

    def feed(self, stream: Stream, text: str) -> None:
        if not text:
            return
        text = self._partial.pop(stream, "") + text
        parts = text.split("\n")
        if parts[-1]:
            self._partial[stream] = parts[-1]
        self._extend(stream, parts[:-1])

    def add_line(self, stream: Stream, text: str) -> None:
        self._extend(stream, [text])

    def close(self) -> None:
        """The streams ended: their unfinished lines are lines now."""
        for stream in list(self._partial):
            self._extend(stream, [self._partial.pop(stream)])

    def _extend(self, stream: Stream, texts: list[str]) -> None:
        if not texts:
            return
        clean = [clean_line(t) for t in texts]
        self.width = max(self.width, max(cell_len(t) for t in clean))
        self.lines.extend((stream, t) for t in clean)
        excess = len(self.lines) - self.max_lines
        if excess > 0:
            # Drop in blocks of 1/16th so a flood does not shift the list on every chunk.
            excess = max(excess, self.max_lines // 16)
            del self.lines[:excess]
            self.dropped += excess

    def __iter__(self) -> Iterator[tuple[Stream, str]]:
        return iter(self.lines)


_CONTROL = {c: "\ufffd" for c in range(32) if c != 9}
_CONTROL[0x7F] = "\ufffd"
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def clean_line(text: str) -> str:
    """What a terminal would leave on screen: after the last carriage return (progress bars), escape
    sequences (colours, cursor moves) removed, tabs expanded, other control characters made visible."""
    if "\r" in text:
        text = text.rstrip("\r").rsplit("\r", 1)[-1]
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return text.expandtabs().translate(_CONTROL)
