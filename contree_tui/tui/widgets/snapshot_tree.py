"""The snapshot tree: every image under the one it was made from, the working snapshot marked.

Children are added to the widget only when their parent is expanded (Textual's Tree rebuilds its line list
over every expanded node on each change: ~270 ms per add on a 10k fully expanded tree vs ~40 ms collapsed).
The structure comes from the Lineage in memory; what costs a request — the command that produced each node —
is asked for (`NeedCommands`) only for nodes that were just shown.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from contree_client.models import OperationStatus
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from contree_tui.tui.model import Lineage, Operation

Clock = Callable[[], datetime]

STATUS_ICONS = {
    OperationStatus.PENDING: ("◌", "running"),
    OperationStatus.ASSIGNED: ("◌", "running"),
    OperationStatus.EXECUTING: ("⟳", "running"),
    OperationStatus.SUCCESS: ("✓", "ok"),
    OperationStatus.FAILED: ("✗", "failed"),
    OperationStatus.CANCELLED: ("⊘", "failed"),
}
COMMAND_WIDTH = 36


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_age(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def op_icon(op: Operation) -> tuple[str, str]:
    """The glyph and the style name for an operation's state (a non-zero exit counts as a failure)."""
    icon, kind = STATUS_ICONS.get(op.status, ("?", "running"))
    if op.status is OperationStatus.SUCCESS and op.exit_code not in (None, 0):
        return "✗", "failed"
    return icon, kind


class SnapshotTree(Tree[str]):
    """Node data is the image uuid; labels are drawn from the lineage at render time, so a status change or
    the clock moving on needs only a refresh, not new nodes."""

    BINDINGS = [
        Binding("enter", "choose", "Make working", id="tree.make-working"),
        Binding("j,down", "cursor_down", "Down", show=False, id="tree.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="tree.up"),
        Binding("l,right", "expand_or_child", "Expand", show=False, id="tree.expand"),
        Binding("h,left", "collapse_or_parent", "Collapse", show=False, id="tree.collapse"),
        Binding("g,home", "scroll_home", "Top", show=False, id="tree.top"),
        Binding("G,end", "scroll_end", "Bottom", show=False, id="tree.bottom"),
        Binding("space", "toggle_node", "Expand/collapse", show=False, id="tree.toggle"),
        Binding("i", "inspect", "Files", id="tree.inspect"),
    ]

    COMPONENT_CLASSES = {
        "snapshot-tree--working",
        "snapshot-tree--tag",
        "snapshot-tree--uuid",
        "snapshot-tree--age",
        "snapshot-tree--command",
        "snapshot-tree--ok",
        "snapshot-tree--failed",
        "snapshot-tree--running",
    }

    class Chosen(Message):
        """The user asked for this snapshot to become the working one."""

        def __init__(self, uuid: str) -> None:
            super().__init__()
            self.uuid = uuid

    class Inspect(Message):
        """The user asked to see this snapshot's files (the detail view)."""

        def __init__(self, uuid: str) -> None:
            super().__init__()
            self.uuid = uuid

    class NeedCommands(Message):
        """These producing operations are now on screen and their commands are not known yet."""

        def __init__(self, operations: list[str]) -> None:
            super().__init__()
            self.operations = operations

    def __init__(self, *, clock: Clock = utc_now, id: str | None = None) -> None:
        self.clock = clock
        self.lineage = Lineage()
        self.working: str | None = None
        self.commands: dict[str, str] = {}  # producing operation uuid -> command
        self._by_uuid: dict[str, TreeNode[str]] = {}
        self._populated: set[str] = set()
        super().__init__("snapshots", id=id)
        self.show_root = False
        self.auto_expand = False
        self.guide_depth = 2

    # Building -------------------------------------------------------------------------------------------

    def load(self, lineage: Lineage, working: str | None) -> None:
        """Show `lineage` afresh: roots collapsed, the path to the working snapshot open."""
        self.clear()
        self.lineage = lineage
        self.working = working
        self._by_uuid.clear()
        self._populated.clear()
        self.root.expand()
        shown = [self._add(self.root, snapshot.uuid) for snapshot in lineage.roots()]
        self._ask_commands(shown)
        if working:
            self.reveal(working)

    def _add(self, parent: TreeNode[str], uuid: str) -> str:
        node = parent.add("", data=uuid, allow_expand=bool(self.lineage.children_of(uuid)))
        self._by_uuid[uuid] = node
        return uuid

    def _populate(self, uuid: str) -> None:
        if uuid in self._populated or uuid not in self._by_uuid:
            return
        self._populated.add(uuid)
        node = self._by_uuid[uuid]
        shown = [self._add(node, child.uuid) for child in self.lineage.children_of(uuid)]
        node.allow_expand = bool(shown)
        self._ask_commands(shown)

    def _ask_commands(self, uuids: list[str]) -> None:
        wanted = [s.operation for u in uuids if (s := self.lineage.get(u)) and s.operation
                  and s.operation not in self.commands]
        if wanted:
            self.post_message(self.NeedCommands(wanted))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[str]) -> None:
        if event.node.data:
            self._populate(event.node.data)

    def reveal(self, uuid: str) -> TreeNode[str] | None:
        """Open every ancestor of `uuid` so its node exists and is visible; returns it."""
        for ancestor in self.lineage.ancestors(uuid):
            if ancestor in self._by_uuid:
                self._populate(ancestor)
                self._by_uuid[ancestor].expand()
        return self._by_uuid.get(uuid)

    def add_snapshot(self, uuid: str) -> None:
        """A snapshot just made (already in the lineage): shown if its parent is open."""
        parent = self.lineage.parent_of(uuid)
        if uuid in self._by_uuid:
            return
        if parent is None or parent not in self.lineage.snapshots:
            self._ask_commands([self._add(self.root, uuid)])
        elif parent in self._populated:
            self._by_uuid[parent].allow_expand = True
            self._ask_commands([self._add(self._by_uuid[parent], uuid)])
        elif parent in self._by_uuid:
            self._by_uuid[parent].allow_expand = True

    def set_working(self, uuid: str | None, *, move_cursor: bool = True) -> None:
        self.working = uuid
        node = self.reveal(uuid) if uuid else None
        if node is not None and move_cursor:
            self.call_after_refresh(self.move_cursor, node)
        self.refresh_labels()

    def set_commands(self, commands: dict[str, str]) -> None:
        self.commands.update(commands)
        self.refresh_labels()

    def refresh_labels(self) -> None:
        """Labels are computed at render time: drop the cached lines and draw again."""
        self._invalidate()

    def node_for(self, uuid: str) -> TreeNode[str] | None:
        return self._by_uuid.get(uuid)

    @property
    def cursor_uuid(self) -> str | None:
        node = self.cursor_node
        return node.data if node is not None else None

    # Drawing --------------------------------------------------------------------------------------------

    def render_label(self, node: TreeNode[str], base_style: Style, style: Style) -> Text:
        text = super().render_label(node, base_style, style)
        uuid = node.data
        snapshot = self.lineage.get(uuid)
        if snapshot is None:
            return text
        part = self.get_component_rich_style
        working = uuid == self.working
        text.append("● " if working else "  ", part("snapshot-tree--working"))
        if snapshot.tag:
            text.append(snapshot.tag + " ", part("snapshot-tree--tag"))
        text.append(snapshot.short, part("snapshot-tree--uuid"))
        text.append(f" {format_age(snapshot.created_at, self.clock()):>3}", part("snapshot-tree--age"))
        latest = self.lineage.latest_op.get(snapshot.uuid)
        if latest is not None:
            icon, kind = op_icon(latest)
            text.append(f" {icon}", part(f"snapshot-tree--{kind}"))
        command = self.commands.get(snapshot.operation or "")
        if command:
            one_line = " ".join(command.split())
            if len(one_line) > COMMAND_WIDTH:
                one_line = one_line[: COMMAND_WIDTH - 1] + "…"
            text.append(f" {one_line}", part("snapshot-tree--command"))
        text.stylize(style)
        return text

    # Keys -----------------------------------------------------------------------------------------------

    def action_choose(self) -> None:
        if self.cursor_uuid:
            self.post_message(self.Chosen(self.cursor_uuid))

    def action_inspect(self) -> None:
        if self.cursor_uuid:
            self.post_message(self.Inspect(self.cursor_uuid))

    def action_expand_or_child(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.allow_expand and not node.is_expanded:
            node.expand()
        elif node.children:
            self.action_cursor_down()

    def action_collapse_or_parent(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded:
            node.collapse()
        elif node.parent is not None and node.parent is not self.root:
            self.move_cursor(node.parent)
