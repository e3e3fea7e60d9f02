"""The merged log: the lines of several operations' buffers in one list, in the order of their events' times,
each remembering which operation it came from (the log view draws a coloured prefix from that).

It holds no text of its own: entries share the buffers' strings, so merging 20 runs costs a pointer and
three bytes per line. New lines are pulled from the buffers when the view flushes, merged by time
within that batch (a run whose events come late lands after what was already shown, as in `tail -f a b`).
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass

from contree_tui.tui.model import LineStore, OutputBuffer


@dataclass
class Member:
    key: str  # the operation's uuid
    label: str  # the prefix drawn before its lines (op_labels.py: what a person calls the operation)
    buffer: OutputBuffer
    seen: int = 0  # buffer.total already pulled
    colour: int = 0  # its colour slot (op_labels.ColourSlots: the same for the whole session)


class MergedLog:
    """A LogSource over several OutputBuffers."""

    def __init__(self, max_lines: int = 100_000) -> None:
        self.max_lines = max_lines
        self.lines = LineStore()
        self.dropped = 0
        self.width = 0
        self.members: list[Member] = []
        self._origin = array("H")  # per line: the member's index
        self._stamp_lines = array("q")
        self._stamp_times = array("d")

    @property
    def total(self) -> int:
        return self.dropped + len(self.lines)

    @property
    def keys(self) -> list[str]:
        return [member.key for member in self.members]

    def attach(self, key: str, buffer: OutputBuffer, label: str | None = None, colour: int | None = None) -> bool:
        """Merge this buffer's lines from now on, and those it already holds; False if it is merged already."""
        if any(member.key == key for member in self.members):
            return False
        colour = len(self.members) if colour is None else colour
        self.members.append(Member(key, label or key[:8], buffer, buffer.dropped, colour))
        return True

    def relabel(self, labels: dict[str, str]) -> None:
        """New prefixes (another operation joined: what tells them apart may have changed)."""
        for member in self.members:
            member.label = labels.get(member.key, member.label)

    def origin(self, index: int) -> int:
        """Which member (position in `members`) the line with absolute index `index` came from."""
        return self._origin[index - self.dropped]

    def label_width(self) -> int:
        return max((len(member.label) for member in self.members), default=0)

    def pull(self) -> int:
        """Take the lines the buffers gained since the last pull; how many arrived."""
        spans = [(max(member.seen, member.buffer.dropped), member.buffer.total) for member in self.members]
        busy = sum(1 for start, end in spans if end > start)
        if sum(end - start for start, end in spans) > self.max_lines:
            # More than the merged log keeps (opening it on 20 runs with 50,000 lines each): take each one's
            # newest share only, rather than merging a million lines to drop most of them.
            share = self.max_lines // busy
            spans = [(max(start, end - share), end) for start, end in spans]
        # Runs of lines that share a time (a buffer's batch marks), merged by time: the work is per batch, the
        # lines themselves are moved by slicing.
        runs: list[tuple[float, int, LineStore, int, int]] = []
        for slot, member in enumerate(self.members):
            buffer = member.buffer
            start, end = spans[slot]
            member.seen = max(member.seen, buffer.total)
            if start >= end:
                continue
            offset = buffer.dropped
            while start < end:
                stop = min(end, buffer.mark_after(start))
                runs.append((buffer.time_of(start) or 0.0, slot, buffer.lines, start - offset, stop - offset))
                start = stop
            self.width = max(self.width, buffer.width)
        if not runs:
            return 0
        runs.sort(key=lambda run: run[0])  # stable: each member's own order is kept
        arrived = 0
        for stamp, slot, lines, first, stop in runs:
            if not self._stamp_times or self._stamp_times[-1] != stamp:
                self._stamp_lines.append(self.total)
                self._stamp_times.append(stamp)
            self.lines.extend_from(lines, first, stop)
            self._origin.extend(array("H", [slot]) * (stop - first))
            arrived += stop - first
        excess = len(self.lines) - self.max_lines
        if excess > 0:
            excess = max(excess, self.max_lines // 16)  # in blocks, as OutputBuffer does
            del self.lines[:excess]
            del self._origin[:excess]
            self.dropped += excess
            gone = bisect_right(self._stamp_lines, self.dropped) - 1
            if gone > 0:
                del self._stamp_lines[:gone]
                del self._stamp_times[:gone]
        return arrived

    def time_of(self, index: int) -> float | None:
        at = bisect_right(self._stamp_lines, index) - 1
        return self._stamp_times[at] or None if at >= 0 else None

    def text_lines(self) -> list[str]:
        """The merged log as plain text, each line behind its operation's label (for saving)."""
        labels = [member.label for member in self.members]
        width = self.label_width()
        return [f"{labels[slot]:<{width}} │ {text}" for slot, text in zip(self._origin, self.lines.texts, strict=True)]

