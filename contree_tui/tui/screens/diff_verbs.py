"""Diff any two snapshots from the main screen: `:diff A [B]` (A and B as snapshot_refs.py reads them; no B:
the working snapshot), and `D` in the tree — the first press marks the node under the cursor as the base, a
press on another node opens the diff from the base to it (on the same node: the mark is dropped). Both open
the snapshot detail view on that diff (added / modified / removed, and a modified file's lines). A mixin of
MainScreen.
"""

from __future__ import annotations

import shlex

from contree_tui.tui import verbs as v
from contree_tui.tui.command_log import LogEntry
from contree_tui.tui.model import Snapshot
from contree_tui.tui.screens.snapshot_detail import SnapshotDetailScreen
from contree_tui.tui.snapshot_refs import WORKING_REF, RefError, resolve


def shell_diff_line(verb: v.Diff) -> str:
    """The `!diff …` line that reaches the shell's diff with the words given: no `.`, the working snapshot the
    parser fills in for a missing B (`:diff notes.txt` hinted `!diff notes.txt .`, a line never typed)."""
    words = [verb.base] if verb.target == WORKING_REF else [verb.base, verb.target]
    return "!diff " + " ".join(shlex.quote(w) for w in words)


class DiffVerbs:
    """Mixed into MainScreen: uses its backend, lineage, position, tree and command log."""

    diff_base: str | None = None  # the node `D` marked

    def _verb_diff(self, verb: v.Diff, entry: LogEntry) -> None:
        try:
            base = resolve(verb.base, self.lineage, self.position.working)
            target = resolve(verb.target, self.lineage, self.position.working)
        except RefError as exc:
            # `diff` is a shell program too: say how to reach it when the words were meant as files
            reason = f"{exc} ({shell_diff_line(verb)} runs the shell's diff)"
            entry.finish(reason, ok=False)
            self.notify(reason, title="cannot diff", severity="error", timeout=10)
            return
        entry.finish(f"{base.short} → {target.short}")
        self.open_diff(base, target)

    def action_diff_mark(self) -> None:
        """`D`: mark the base, then open the diff from it to the node under the cursor."""
        uuid = self.tree.cursor_uuid
        snapshot = self.lineage.get(uuid)
        if snapshot is None:
            self.notify("move the cursor to a snapshot first", title="diff", severity="warning")
            return
        base = self.lineage.get(self.diff_base)
        if base is None:
            self.diff_base = snapshot.uuid
            self.notify(f"base: {snapshot.name} · D on another snapshot shows what changed from it",
                        title="diff")
            return
        self.diff_base = None
        if base.uuid == snapshot.uuid:
            self.notify(f"{snapshot.name} is no longer the diff's base", title="diff")
            return
        self.command_log.record(self.clock(), "diff", f":diff {base.short} {snapshot.short}",
                                f"{base.short} → {snapshot.short}", snapshot=self.position.working)
        self.open_diff(base, snapshot)

    def open_diff(self, base: Snapshot, target: Snapshot) -> None:
        if self.backend is None:
            self.notify("not connected yet", title="cannot diff", severity="error")
            return
        if base.uuid == target.uuid:
            self.notify(f"{base.name} against itself: nothing differs", title="diff")
            return
        self.app.push_screen(SnapshotDetailScreen(
            self.backend.files, target, self.lineage.get(target.parent),
            command=self.tree.commands.get(target.operation or ""), folder=getattr(self.app, "folder", None),
            base=base, open_diff=True))
