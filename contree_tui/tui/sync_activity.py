"""What the folder's last sync did, for the status bar (`↑ 1 file, 12 B, 0.5 s ago`) and the command log (one
entry per sync that changed something). SyncStatus says where a sync is (idle with the state's total, syncing,
error); this says what the last one that changed the state sent, and when. No Textual here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from contree_tui.client.sizes import human_size
from contree_tui.client.sync import SyncReport

NAMED_PATHS = 3  # paths a command-log entry names before "and N more"


@dataclass(frozen=True)
class SyncActivity:
    """One sync that changed the folder's state: the files it added or changed (and their bytes), the ones
    it removed, at `at` (time.monotonic(), for the age) taking `seconds`."""

    sent: tuple[str, ...]  # added or changed, relative to the folder
    sent_bytes: int
    removed: tuple[str, ...]
    uploaded_bytes: int  # what went over the wire (a content the server held already costs nothing)
    seconds: float
    at: float

    @classmethod
    def from_report(cls, report: SyncReport, at: float | None = None) -> SyncActivity | None:
        """None for a sync that changed nothing (a touch, a rewrite with the same bytes, a run's re-sync)."""
        if not report.changed_state:
            return None
        sent = (*report.added, *report.changed)
        entries = report.state.entries
        size = sum(entries[rel].size for rel in sent if rel in entries)
        return cls(tuple(sorted(sent)), size, report.removed, report.uploaded_bytes, report.seconds,
                   time.monotonic() if at is None else at)

    def summary(self) -> str:
        """`↑ 1 file, 12 B` · `↑ 3 files, 1.2 KiB, - 1 file` · `- 2 files`."""
        parts = []
        if self.sent:
            parts.append(f"↑ {_files(len(self.sent))}, {human_size(self.sent_bytes)}")
        if self.removed:
            parts.append(f"- {_files(len(self.removed))}")
        return ", ".join(parts)

    def paths(self) -> str:
        """The paths it touched, for the command log: `app.txt`, `a, b, c and 4 more`, `- old.txt`."""
        named = [*self.sent, *(f"- {rel}" for rel in self.removed)]
        more = len(named) - NAMED_PATHS
        return ", ".join(named[:NAMED_PATHS]) + (f" and {more} more" if more > 0 else "")

    def age(self, now: float | None = None) -> str:
        return format_age((time.monotonic() if now is None else now) - self.at)


def format_age(seconds: float) -> str:
    """`0.5 s ago` under 10 s (a save a moment ago is what the user checks), then `12 s ago`, `3 min ago`,
    `2 h ago`."""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s ago"
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    return f"{seconds // 3600:.0f} h ago"


def _files(count: int) -> str:
    return f"{count:,} file{'s' if count != 1 else ''}"
