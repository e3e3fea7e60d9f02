"""Following the working position when another client moves it (`contree-tui run`, `rollback`, `use` in
another terminal, in the same folder). A mixin of MainScreen, kept apart so the screen's module stays about
layout, loading and following.

The position is a row of a sqlite file the clients share (client/position.py). Every half second one
`PRAGMA data_version` (~20 µs measured: no file read unless another connection committed) says whether
anyone else wrote; only then are the row and the new history entries read. A move made elsewhere is followed at once:
the status bar, the tree's working marker (the cursor stays where the user left it), the new snapshot in the
tree (a lineage refresh when the tree does not know it yet), a command log entry (`@`) per step, and a
toast. A `:` run whose start position another client left meanwhile does not move the position to its result
(no silent fork, client/position.py): `tell_diverted` says so.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from contree_tui.client.position import HistoryEntry

POLL_EVERY = 0.5  # seconds; the CLI's move shows within this (plus a refresh if its snapshot is new here)
CLIENT = "another client"


class PositionWatch:
    """Mixed into MainScreen: uses its position, lineage, tree, command log, `_show_working` and `load`."""

    backend: Any
    position: Any
    lineage: Any
    command_log: Any

    def _attach_position_watch(self, backend: Any) -> None:
        if hasattr(backend.position, "poll"):  # a frozen backend in tests has none
            self.set_interval(POLL_EVERY, self.poll_position)  # type: ignore[attr-defined]

    def poll_position(self) -> None:
        before = self.position.working
        try:
            entries = self.position.poll()
        except sqlite3.Error:
            return  # a busy or broken file: the next poll tries again (moves say their own errors)
        if entries is None:
            return
        for entry in entries:
            self._log_foreign(entry)
        after = self.position.working
        if after == before or after is None:
            return
        last = next((e for e in reversed(entries) if e.image == after), None)
        if after in self.lineage.snapshots:
            self._show_working(move_cursor=False)  # type: ignore[attr-defined]
        else:
            self.load()  # type: ignore[attr-defined]  # its snapshot is new here: refresh, then show it working
        what = f" ({describe(last)})" if last is not None else ""
        self.notify(f"{CLIENT} moved the working snapshot to {after[:8]}{what}; the next run starts there",  # type: ignore[attr-defined]
                    title="working snapshot moved")

    def _log_foreign(self, entry: HistoryEntry) -> None:
        """A step another client made, into the command log (`@`), with the snapshot it left working."""
        if entry.action == "run":
            result = f"→ {entry.image[:8]} (working)" if entry.moved and entry.image else "no move"
            if entry.exit_code not in (None, 0):
                result = f"exit {entry.exit_code} · {result}"
        else:
            result = f"working {entry.image[:8]}" if entry.image else "no working snapshot"
        self.command_log.record(entry.at, entry.action, f"{CLIENT}: {describe(entry)}", result,
                                snapshot=entry.image)

    def tell_diverted(self, command: str, source: str, result: str | None) -> None:
        """After this TUI's run: if another client's move kept the position from following it, say so."""
        moved_by = getattr(self.position, "diverted", None)
        if moved_by is None or result is None:
            return
        working = self.position.working or ""
        self._show_working(move_cursor=False)  # type: ignore[attr-defined]
        self.notify(  # type: ignore[attr-defined]
            f"while `{short(command)}` ran, {CLIENT} moved the working snapshot to {working[:8]} "
            f"({describe(moved_by)}): it stays there. The run's snapshot {result[:8]} is a branch of "
            f"{source[:8]} in the tree (enter on it makes it working).",
            title="not moved: the position moved elsewhere", severity="warning", timeout=15)


def describe(entry: HistoryEntry) -> str:
    if entry.action == "run":
        return f"$ {short(entry.note)}"
    if entry.action in ("rollback", "forward"):
        return entry.action if entry.note in ("", "1") else f"{entry.action} {entry.note}"
    return f"{entry.action} {entry.note}".strip()


def short(text: str, width: int = 40) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"
