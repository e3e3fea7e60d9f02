"""The snapshot tree's finding keys: `/` filters (a tag or command substring, a uuid prefix; the ancestors of
a match stay, so it keeps its place), `'` jumps to a tag with completion. Mixed into SnapshotTree."""

from __future__ import annotations

from typing import TYPE_CHECKING

from contree_tui.tui.model import Lineage, Snapshot
from contree_tui.tui.screens.prompt import PromptScreen

if TYPE_CHECKING:
    from textual.app import App
    from textual.notifications import SeverityLevel
    from textual.widgets.tree import TreeNode


class TreeSearch:
    """Uses SnapshotTree's lineage, commands, rows and cursor."""

    lineage: Lineage
    working: str | None
    commands: dict[str, str]
    filter_text: str
    _visible: set[str] | None
    _index: dict[str, int]

    if TYPE_CHECKING:  # provided by SnapshotTree and Textual's Tree
        app: App[object]
        border_title: str | None
        cursor_uuid: str | None

        def load(self, lineage: Lineage, working: str | None) -> None: ...
        def reveal(self, uuid: str) -> TreeNode[str] | None: ...
        def _put_cursor(self, line: int) -> None: ...
        def _ask_for(self, operations: list[str]) -> None: ...
        def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information") -> None: ...

    def _matches(self, snapshot: Snapshot, query: str) -> bool:
        """`query` (lower case) is a prefix of the uuid, or in the tag or the producing command."""
        if snapshot.uuid.startswith(query) or (snapshot.tag is not None and query in snapshot.tag.lower()):
            return True
        command = self.commands.get(snapshot.operation or "")
        return command is not None and query in command.lower()

    def _matching(self, text: str) -> set[str]:
        """The snapshots matching `text` (a tag or command substring, a uuid prefix) and their ancestors."""
        query = text.strip().lower()
        visible: set[str] = set()
        for snapshot in self.lineage.snapshots.values():
            if self._matches(snapshot, query):
                uuid: str | None = snapshot.uuid
                while uuid is not None and uuid not in visible and uuid in self.lineage.snapshots:
                    visible.add(uuid)  # stops at an ancestor already in: its own ancestors are too
                    uuid = self.lineage.parent_of(uuid)
        return visible

    def set_filter(self, text: str) -> None:
        """Show only the snapshots matching `text` and their ancestors; "" shows everything again. The cursor
        stays on its snapshot when that is still shown."""
        self.filter_text = text.strip()
        self._visible = None
        self._refilter()
        if self.filter_text:
            unknown = [s.operation for s in self.lineage.snapshots.values()
                       if s.operation and s.operation not in self.commands]
            if unknown:  # commands never shown are not known yet: read them, the filter re-applies
                self._ask_for(unknown)

    def _refilter(self) -> None:
        cursor = self.cursor_uuid
        self.load(self.lineage, self.working)
        target = cursor if cursor in self._index else None
        if target is None and self._visible is not None:
            target = next((s.uuid for s in self.lineage.snapshots.values()
                           if s.uuid in self._index and self._matches(s, self.filter_text.lower())), None)
        if target is None and cursor is not None and self._visible is None:
            target = cursor if self.reveal(cursor) is not None else None
        if target is not None:
            self._put_cursor(self._index[target])

    def _title(self) -> None:
        if self._visible is None:
            self.border_title = "snapshots"
        else:
            count = sum(1 for s in self.lineage.snapshots.values() if self._matches(s, self.filter_text.lower()))
            self.border_title = f"snapshots · /{self.filter_text} ({count} match{'es' if count != 1 else ''})"

    def tags(self) -> list[str]:
        return sorted({tag for s in self.lineage.snapshots.values() if s.tag for tag in s.tag.split(", ")})

    def jump_to(self, uuid: str) -> bool:
        """Put the cursor on `uuid`, clearing a filter that hides it; False if the tree has no such snapshot."""
        if uuid not in self.lineage.snapshots:
            return False
        if self._visible is not None and uuid not in self._visible:
            self.set_filter("")
        if self.reveal(uuid) is None:
            return False
        self._put_cursor(self._index[uuid])
        return True

    def find_tag(self, text: str) -> Snapshot | None:
        """The snapshot tagged `text`, else the only one whose tag starts with it."""
        text = text.strip()
        exact = [s for s in self.lineage.snapshots.values() if s.tag and text in s.tag.split(", ")]
        if exact:
            return exact[0]
        prefixed = [s for s in self.lineage.snapshots.values()
                    if s.tag and any(t.startswith(text) for t in s.tag.split(", "))]
        return prefixed[0] if len(prefixed) == 1 else None

    def action_filter(self) -> None:
        self.app.push_screen(PromptScreen("Filter snapshots", self.filter_text,
                                          placeholder="tag, uuid prefix or command",
                                          detail="empty shows every snapshot again"),
                             lambda text: None if text is None else self.set_filter(text))

    def action_jump_tag(self) -> None:
        tags = self.tags()
        if not tags:
            self.notify("no snapshot has a tag", title="jump to tag", severity="warning")
            return
        self.app.push_screen(PromptScreen("Jump to tag", placeholder=tags[0], choices=tags,
                                          detail="tab completes"), self._jump_tag)

    def _jump_tag(self, text: str | None) -> None:
        if not text:
            return
        snapshot = self.find_tag(text)
        if snapshot is None or not self.jump_to(snapshot.uuid):
            self.notify(f"no snapshot is tagged {text!r}", title="jump to tag", severity="warning")
