"""What the TUI shows, kept outside the widgets: snapshots and their tree, operations, the working position,
and each operation's output buffer. No Textual and no network here, so it is cheap to test and to replace.

`Lineage` and `Position` are stand-ins until client/lineage.py and client/position.py land; the widgets only
use the small surface below, so switching is a change in data.py and here, not in the widgets.
"""

from __future__ import annotations

import enum
import re
import time
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import overload

from contree_client.models import OperationStatus

from contree_tui.client.step_result import RESULT_MARK, split_marked_line
from contree_tui.tui.cell_width import line_cells


@dataclass(frozen=True)
class Snapshot:
    """An image as a node of the tree: `parent` is the image its producing operation ran on."""

    uuid: str
    parent: str | None = None
    tag: str | None = None
    created_at: datetime | None = None
    operation: str | None = None  # the operation that produced it (a run, an import; None: unknown)
    imported: bool = False  # its producing operation is an import: a root whose `command` says from where

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
    timed_out: bool = False  # its timeout killed it (the operation still succeeds: a result, as hosted Contree's)
    kind: str = "instance"  # or "image_import": `command` then says what is imported, `image` is None
    progress: float | None = None  # an import's bytes fetched of all to fetch (0..1), once known
    step: str = ""  # what an import is doing: `download 2/5`, `commit`

    @property
    def is_import(self) -> bool:
        return self.kind == "image_import"

    @property
    def running(self) -> bool:
        return not self.status.is_terminal()


class Lineage:
    """The snapshot tree: parent and children of every known image, and the operations known by uuid (a node's
    outcome is the one of the operation that produced it)."""

    def __init__(self, snapshots: Iterable[Snapshot] = (), operations: Iterable[Operation] = ()) -> None:
        self.snapshots: dict[str, Snapshot] = {}
        self._children: dict[str | None, list[str]] = {}
        self.operations: dict[str, Operation] = {}  # operation uuid -> its newest known state
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
        known = self.operations.get(op.uuid)
        if known is None or not _older_state(op, known):
            self.operations[op.uuid] = op

    def producer(self, uuid: str) -> Operation | None:
        """The operation that made snapshot `uuid` (None: unknown, or an import)."""
        snapshot = self.snapshots.get(uuid)
        return self.operations.get(snapshot.operation) if snapshot and snapshot.operation else None

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

    def tags(self) -> list[str]:
        return sorted({t for s in self.snapshots.values() if s.tag for t in s.tag.split(", ")})

    def set_tags(self, uuid: str, tags: tuple[str, ...]) -> None:
        """After `:tag`/`:untag`: `uuid`'s tags are these; a tag lives on one image, so it leaves any other."""
        for other, snapshot in list(self.snapshots.items()):
            had = tuple(snapshot.tag.split(", ")) if snapshot.tag else ()
            kept = tags if other == uuid else tuple(t for t in had if t not in tags)
            if kept != had:
                self.snapshots[other] = replace(snapshot, tag=", ".join(kept) or None)

    def __len__(self) -> int:
        return len(self.snapshots)


def _older_state(a: Operation, b: Operation) -> bool:
    """`a` is a listing taken while the run still ran, `b` its end: a stale listing must not undo the end."""
    return a.running and not b.running


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
                   exit_code: int | None, move: bool = True) -> bool:
        """Move to a run's new result if the position is still where the run started; True if it moved."""
        if not move or self.working != source or result is None or result == source:
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


STREAMS = tuple(Stream)
_STREAM_CODE = {stream: code for code, stream in enumerate(STREAMS)}


class LineStore(Sequence[tuple[Stream, str]]):
    """Lines as two parallel arrays, texts and one byte of stream each, that read as (stream, text) pairs.
    A tuple per line would cost 64 bytes more a line: 1M buffered lines took 226 MB of RSS that way, 165 MB
    this way (bench/bench_tui_logs.py), against 163 MB for the bare list of str."""

    __slots__ = ("streams", "texts")

    def __init__(self, lines: Iterable[tuple[Stream, str]] = ()) -> None:
        self.texts: list[str] = []
        self.streams = bytearray()
        self.extend(lines)

    def add(self, stream: Stream, texts: list[str]) -> None:
        self.texts.extend(texts)
        self.streams.extend(bytes((_STREAM_CODE[stream],)) * len(texts))

    def extend(self, lines: Iterable[tuple[Stream, str]]) -> None:
        for stream, text in lines:
            self.texts.append(text)
            self.streams.append(_STREAM_CODE[stream])

    def extend_from(self, other: LineStore, start: int, stop: int) -> None:
        """Append `other[start:stop]` (the texts are shared, not copied)."""
        self.texts.extend(other.texts[start:stop])
        self.streams.extend(other.streams[start:stop])

    def stream(self, index: int) -> Stream:
        return STREAMS[self.streams[index]]

    def __len__(self) -> int:
        return len(self.texts)

    @overload
    def __getitem__(self, index: int) -> tuple[Stream, str]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[Stream, str]]: ...

    def __getitem__(self, index: int | slice) -> tuple[Stream, str] | list[tuple[Stream, str]]:
        if isinstance(index, slice):
            return [(STREAMS[code], text) for code, text in zip(self.streams[index], self.texts[index], strict=True)]
        return STREAMS[self.streams[index]], self.texts[index]

    def __delitem__(self, index: slice) -> None:
        del self.texts[index]
        del self.streams[index]

    def __iter__(self) -> Iterator[tuple[Stream, str]]:
        return ((STREAMS[code], text) for code, text in zip(self.streams, self.texts, strict=True))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LineStore):
            return self.texts == other.texts and self.streams == other.streams
        return isinstance(other, list | tuple) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LineStore({list(self)!r})"


@dataclass
class OutputBuffer:
    """An operation's output as lines, held here rather than in a widget (the log view renders only what is
    visible). Chunks arrive split anywhere; each stream keeps its unfinished line until its newline comes.

    Past `max_lines` the oldest lines are dropped in blocks (`dropped` counts them), so memory stays bounded
    however much a run prints and the log view can keep its place.

    Times are kept per batch, not per line: a chunk's lines share its event's time (or its arrival time), and
    a run of chunks with the same time is one mark, so a flood costs a few bytes per chunk, not per line."""

    max_lines: int = 50_000
    lines: LineStore = field(default_factory=LineStore)
    dropped: int = 0
    width: int = 0  # widest line in cells, for horizontal scrolling
    last_event_id: int | None = None
    complete: bool = False  # the whole log has been read (the operation ended and its events drained)
    _partial: dict[Stream, str] = field(default_factory=dict)
    _stamp_lines: array[int] = field(default_factory=lambda: array("q"))  # absolute index of a batch's 1st line
    _stamp_times: array[float] = field(default_factory=lambda: array("d"))  # its time (epoch seconds)

    @property
    def total(self) -> int:
        """Lines ever appended: grows monotonically, unlike len(lines)."""
        return self.dropped + len(self.lines)

    def feed(self, stream: Stream, text: str, ts: float | None = None) -> None:
        """A chunk of a stream; `ts` is its event's time (epoch seconds), else its arrival is used."""
        if not text:
            return
        text = self._partial.pop(stream, "") + text
        parts = text.split("\n")
        if parts[-1]:
            self._partial[stream] = parts[-1]
        self._extend(stream, parts[:-1], ts)

    def add_line(self, stream: Stream, text: str, ts: float | None = None) -> None:
        self._extend(stream, [text], ts)

    def close(self, ts: float | None = None) -> None:
        """The streams ended: their unfinished lines are lines now."""
        for stream in list(self._partial):
            self._extend(stream, [self._partial.pop(stream)], ts)

    def time_of(self, index: int) -> float | None:
        """When the line with absolute index `index` (dropped lines count) arrived; None before any line."""
        at = bisect_right(self._stamp_lines, index) - 1
        return self._stamp_times[at] if at >= 0 else None

    def mark_after(self, index: int) -> int:
        """Where the first batch after line `index` starts (`total` if none): the lines between share a time."""
        at = bisect_right(self._stamp_lines, index)
        return self._stamp_lines[at] if at < len(self._stamp_lines) else self.total

    def _stamp(self, ts: float | None) -> None:
        ts = time.time() if ts is None else ts
        if not self._stamp_times or self._stamp_times[-1] != ts:
            self._stamp_lines.append(self.total)
            self._stamp_times.append(ts)

    def _extend(self, stream: Stream, texts: list[str], ts: float | None = None) -> None:
        if not texts:
            return
        joined = "".join(texts)
        if stream is Stream.STDOUT and RESULT_MARK in joined:
            self._extend_readable(texts, ts)
        else:
            self._append(stream, texts, joined, ts)

    def _extend_readable(self, texts: list[str], ts: float | None) -> None:
        """Stdout lines with a function step's result record: the record as a META line `→ returned: VALUE`
        (step_result.py), so the log, its search and a saved copy hold that rather than the raw record."""
        run: list[str] = []
        for text in texts:
            split = split_marked_line(text)
            if split is None:
                run.append(text)
                continue
            before, returned = split
            if before:
                run.append(before)
            if run:
                self._append(Stream.STDOUT, run, "".join(run), ts)
                run = []
            self._append(Stream.META, [returned], returned, ts)
        if run:
            self._append(Stream.STDOUT, run, "".join(run), ts)

    def _append(self, stream: Stream, texts: list[str], joined: str, ts: float | None) -> None:
        self._stamp(ts)
        # Most output is printable ASCII: one scan of the whole batch spares the per-line cleaning, and an ASCII
        # line's width is its length (cell_len per line was a third of the ingest cost at 1M lines).
        clean = [clean_line(t) for t in texts] if _NEEDS_CLEANING.search(joined) else texts
        widest = max(map(len, clean)) if joined.isascii() else max(map(line_cells, clean))  # cell_width.py
        self.width = max(self.width, widest)
        self.lines.add(stream, clean)
        excess = len(self.lines) - self.max_lines
        if excess > 0:
            # Drop in blocks of 1/16th so a flood does not shift the list on every chunk.
            excess = max(excess, self.max_lines // 16)
            del self.lines[:excess]
            self.dropped += excess
            gone = bisect_right(self._stamp_lines, self.dropped) - 1  # the mark covering the new first line stays
            if gone > 0:
                del self._stamp_lines[:gone]
                del self._stamp_times[:gone]

    def __iter__(self) -> Iterator[tuple[Stream, str]]:
        return iter(self.lines)


_CONTROL = {c: "\ufffd" for c in range(32) if c != 9}
_CONTROL[0x7F] = "\ufffd"
_NEEDS_CLEANING = re.compile(r"[\x00-\x1f\x7f]")  # what clean_line changes: control characters and tabs
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def clean_line(text: str) -> str:
    """What a terminal would leave on screen: after the last carriage return (progress bars), escape
    sequences (colours, cursor moves) removed, tabs expanded, other control characters made visible."""
    if "\r" in text:
        text = text.rstrip("\r").rsplit("\r", 1)[-1]
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return text.expandtabs().translate(_CONTROL)
