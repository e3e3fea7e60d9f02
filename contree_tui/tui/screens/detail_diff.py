"""The diff half of the snapshot detail view: `d` lists what changed between the base (the parent, or any
snapshot `:diff A B` / `D` in the tree chose) and this snapshot; enter on a modified file shows its line diff
(widgets/diff_view.py: side by side on a wide terminal, unified below), on an added one its contents, on a
removed one its contents as they were in the base. A mixin of SnapshotDetailScreen.
"""

from __future__ import annotations

from rich.text import Text
from textual import work

from contree_tui.client.snapshot_diff import Change, FileChange
from contree_tui.tui.screens.detail_target import Target
from contree_tui.tui.widgets.diff_view import DiffView


class DetailDiff:
    """Mixed into SnapshotDetailScreen: uses its files, snapshot, base, list and viewer."""

    @property
    def diff_view(self) -> DiffView:
        return self.query_one(DiffView)

    def diff_title(self) -> str:
        base = self.base
        assert base is not None
        if self.parent_snapshot is not None and base.uuid == self.parent_snapshot.uuid:
            return f"diff against {base.name}"
        return f"diff {base.name} → {self.snapshot.name}"

    @work(exclusive=True, group="detail-list", exit_on_error=False, description="diff")
    async def action_diff(self) -> None:
        base = self.base
        if base is None:
            self.notify(f"{self.snapshot.name} has no parent to compare with", title="no diff",
                        severity="warning")
            return
        if self.diff is None:
            self.entry_list.border_title = f"{self.diff_title()}: comparing…"
            self.diff = await self.files.diff(base.uuid, self.snapshot.uuid, base.created_at)
        diff = self.diff
        rows = [(change.path, self._diff_target(change), self._change_cells(change)) for change in diff.changes]
        self._fill("diff", f"{self.diff_title()}: {diff.summary}", ("", "path", "what"), rows)
        if not rows:
            self.notify(f"no file differs from {base.name}", title="diff")

    def _diff_target(self, change: FileChange) -> Target:
        base = self.base
        assert base is not None
        if change.change is Change.REMOVED:
            where = "removed in this snapshot: as it was in the parent" if base is self.parent_snapshot else \
                f"not in this snapshot: as it is in {base.name}"
            return Target(change.path, change.kind, base.uuid, note=where)
        if change.change is Change.MODIFIED and change.kind == "file":
            return Target(change.path, change.kind, self.snapshot.uuid, base=base.uuid)
        return Target(change.path, change.kind, self.snapshot.uuid)

    def _change_cells(self, change: FileChange) -> tuple[Text, Text, str]:
        style = self._style(change.change.value)
        path = change.path + ("/" if change.kind == "dir" else "")
        return Text(change.change.sign, style=style), Text(path, style=style), change.detail or change.change.value

    @work(exclusive=True, group="detail-view", exit_on_error=False, description="diffing the file")
    async def show_diff(self, target: Target) -> None:
        """The file's line diff (or its sizes) in the right pane, in place of the file viewer."""
        assert target.base is not None
        view = self.diff_view
        view.border_title = f"{target.path}: comparing…"
        self._show_pane(view)
        found = await self.files.file_diff(target.base, target.image, target.path)
        self.viewing = target
        view.show(found)
        view.border_title = f"{target.path} {target.base[:8]} → {target.image[:8]}"
        view.border_subtitle = f"{found.summary} · {'side by side' if view.side_by_side else 'unified'}"
