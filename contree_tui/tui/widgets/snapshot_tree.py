"""The snapshot tree: every image under the one it was made from, the working snapshot marked.

Children are added to the widget only when their parent is expanded (Textual's Tree rebuilds its line list
over every expanded node on each change: ~270 ms per add on a 10k fully expanded tree vs ~40 ms collapsed).
The structure comes from the Lineage in memory; what costs a request — the command that produced each node —
is asked for (`NeedCommands`) only for nodes that were just shown.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from contree_tui.tui.model import Lineage, Snapshot
from contree_tui.tui.outcome import op_icon
from contree_tui.tui.screens.prompt import PromptScreen

Clock = Callable[[], datetime]

COMMAND_WIDTH = 36
# A long chain or a crowd of siblings shows a window of its snapshots, with a "… N more" line on a side
# that has more: Textual builds every node and every line of an expanded node up front, so a 10,000-run
# chain cost 1.7 s before the first paint (the newest window is where a session works).
WINDOW = 200
CHUNK = 1000  # shown per press on a "… N more" line
MORE = "\0more"  # node data of a "… N more" line: f"{MORE}:{side}:{holder uuid}"


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
        Binding("slash", "filter", "Filter", id="tree.filter"),
        Binding("apostrophe", "jump_tag", "Jump to tag", show=False, id="tree.jump-tag"),
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
        self.filter_text = ""
        self._visible: set[str] | None = None  # with a filter: the matches and their ancestors
        self._hidden: dict[str, tuple[int, int]] = {}  # holder -> display kids hidden before / after its window
        super().__init__("snapshots", id=id)
        self.show_root = False
        self.auto_expand = False
        self.guide_depth = 2

    # Building -------------------------------------------------------------------------------------------

    def load(self, lineage: Lineage, working: str | None) -> None:
        """Show `lineage` afresh: roots collapsed, the path to the working snapshot open (with a filter: every
        match shown, under its ancestors)."""
        self.clear()
        self.lineage = lineage
        self.working = working
        self._by_uuid.clear()
        self._populated.clear()
        self._hidden.clear()
        self.root.expand()
        if self.filter_text:
            self._visible = self._matching(self.filter_text)
        shown = [self._add(self.root, snapshot.uuid) for snapshot in lineage.roots() if self._shows(snapshot.uuid)]
        self._ask_commands(shown)
        if self._visible is not None:
            self._open_matches(shown)
        elif working:
            self.reveal(working)
        self._title()

    def _shows(self, uuid: str) -> bool:
        return self._visible is None or uuid in self._visible

    def _kids(self, uuid: str) -> list[str]:
        return [child.uuid for child in self.lineage.children_of(uuid) if self._shows(child.uuid)]

    # A chain (each snapshot the only child of the one before, a session's runs one after another) is drawn
    # flat, under the snapshot it starts from: indentation grows only where the tree branches. Nested, a
    # 10,000-run session was 10,000 levels deep and took minutes to draw (every line carries its guides).

    def _is_head(self, uuid: str) -> bool:
        """Drawn under its parent (a root, or a child of a branch point), not after it."""
        parent = self.lineage.parent_of(uuid)
        if parent is None or parent not in self.lineage.snapshots or not self._shows(parent):
            return True
        return len(self._kids(parent)) != 1

    def _display_kids(self, uuid: str) -> list[str]:
        kids = self._kids(uuid)
        if len(kids) != 1:
            return kids
        if not self._is_head(uuid):
            return []  # its only child follows it, under the chain's head
        chain = [kids[0]]
        while len(after := self._kids(chain[-1])) == 1:
            chain.append(after[0])
        return chain

    def _has_display_kids(self, uuid: str) -> bool:
        kids = self._kids(uuid)
        return len(kids) > 1 or (len(kids) == 1 and self._is_head(uuid))

    def _display_parent(self, uuid: str) -> str | None:
        """The snapshot whose node holds `uuid`'s node (None: the root)."""
        if self._is_head(uuid):
            return self.lineage.parent_of(uuid) if self.lineage.parent_of(uuid) in self.lineage.snapshots else None
        parent = self.lineage.parent_of(uuid)
        while parent is not None and not self._is_head(parent):
            parent = self.lineage.parent_of(parent)
        return parent

    def _add(self, parent: TreeNode[str], uuid: str) -> str:
        node = parent.add("", data=uuid, allow_expand=self._has_display_kids(uuid))
        self._by_uuid[uuid] = node
        return uuid

    def _populate(self, uuid: str) -> None:
        if uuid in self._populated or uuid not in self._by_uuid:
            return
        self._populated.add(uuid)
        node = self._by_uuid[uuid]
        kids = self._display_kids(uuid)
        before, after = self._hidden.get(uuid) or (max(0, len(kids) - WINDOW), 0)
        before, after = min(before, len(kids)), min(after, max(0, len(kids) - before))
        self._hidden[uuid] = (before, after)
        if before:
            node.add_leaf("", data=f"{MORE}:before:{uuid}")
        shown = [self._add(node, child) for child in kids[before:len(kids) - after]]
        if after:
            node.add_leaf("", data=f"{MORE}:after:{uuid}")
        node.allow_expand = bool(kids)
        self._ask_commands(shown)

    def _show_more(self, data: str) -> None:
        """A "… N more" line was chosen: CHUNK more of that side, the cursor kept on the same snapshot."""
        _, side, holder = data.split(":", 2)
        before, after = self._hidden.get(holder, (0, 0))
        if side == "before":
            before = max(0, before - CHUNK)
        else:
            after = max(0, after - CHUNK)
        self._hidden[holder] = (before, after)
        self._rebuild(holder)

    def _widen_to(self, holder: str, uuid: str) -> bool:
        """Move `holder`'s window so that `uuid`, one of its display kids, is in it; True if it moved."""
        kids = self._display_kids(holder)
        if uuid not in kids or holder not in self._hidden:
            return False
        before, after = self._hidden[holder]
        index = kids.index(uuid)
        if before <= index < len(kids) - after:
            return False
        before = max(0, index - WINDOW // 2)
        self._hidden[holder] = (before, max(0, len(kids) - before - WINDOW))
        self._rebuild(holder, keep_cursor=False)
        return True

    def _ask_commands(self, uuids: list[str]) -> None:
        wanted = [s.operation for u in uuids if (s := self.lineage.get(u)) and s.operation
                  and s.operation not in self.commands]
        if wanted:
            self.post_message(self.NeedCommands(wanted))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[str]) -> None:
        if event.node.data:
            self._populate(event.node.data)

    def reveal(self, uuid: str) -> TreeNode[str] | None:
        """Open every node above `uuid` so its node exists and is visible; returns it."""
        path: list[str] = []
        above = self._display_parent(uuid) if uuid in self.lineage.snapshots else None
        while above is not None and above not in path:
            path.append(above)
            above = self._display_parent(above)
        for index, ancestor in enumerate(reversed(path)):
            if ancestor in self._by_uuid:
                self._populate(ancestor)
                self._by_uuid[ancestor].expand()
                below = path[len(path) - index - 2] if index < len(path) - 1 else uuid
                if below not in self._by_uuid:
                    self._widen_to(ancestor, below)
        return self._by_uuid.get(uuid)

    def add_snapshot(self, uuid: str) -> None:
        """A snapshot just made (already in the lineage): shown if its parent is open (and, with a filter,
        if it matches)."""
        parent = self.lineage.parent_of(uuid)
        if uuid in self._by_uuid:
            return
        if self._visible is not None:
            snapshot = self.lineage.get(uuid)
            if snapshot is not None and self._matches(snapshot, self.filter_text.lower()):
                self._refilter()
            return
        if parent is None or parent not in self.lineage.snapshots:
            self._ask_commands([self._add(self.root, uuid)])
            return
        siblings = len(self._kids(parent))
        if siblings == 2:
            # the parent just became a branch point: its first child's chain, drawn flat, moves under it
            self._rebuild(parent if self._is_head(parent) else self._display_parent(parent))
            return
        holder = self._display_parent(uuid)
        if holder is None:
            return
        if holder in self._populated and self._hidden.get(holder, (0, 0))[1]:
            before, after = self._hidden[holder]
            self._hidden[holder] = (before, after + 1)  # past the window's end: counted in its "… N more"
            self.refresh_labels()
        elif holder in self._populated:
            self._by_uuid[holder].allow_expand = True
            self._ask_commands([self._add(self._by_uuid[holder], uuid)])  # a chain's end, or a new branch
        elif holder in self._by_uuid:
            self._by_uuid[holder].allow_expand = True

    def _rebuild(self, uuid: str | None, *, keep_cursor: bool = True) -> None:
        """Build the nodes under `uuid` again (the cursor stays on its snapshot)."""
        if uuid is None or uuid not in self._by_uuid:
            self._refilter()
            return
        node = self._by_uuid[uuid]
        cursor = self.cursor_uuid
        stack = list(node.children)
        while stack:
            child = stack.pop()
            stack.extend(child.children)
            if child.data is not None:
                self._by_uuid.pop(child.data, None)
                self._populated.discard(child.data)
        node.remove_children()
        self._populated.discard(uuid)
        node.allow_expand = self._has_display_kids(uuid)
        if node.is_expanded:
            self._populate(uuid)
        if keep_cursor and cursor is not None and (target := self.reveal(cursor)) is not None:
            self.call_after_refresh(self.move_cursor, target)

    def set_working(self, uuid: str | None, *, move_cursor: bool = True) -> None:
        self.working = uuid
        node = self.reveal(uuid) if uuid else None
        if node is not None and move_cursor:
            self.call_after_refresh(self.move_cursor, node)
        self.refresh_labels()

    def set_commands(self, commands: dict[str, str]) -> None:
        new = {op: command for op, command in commands.items() if self.commands.get(op) != command}
        self.commands.update(commands)
        query = self.filter_text.lower()
        if query and any(query in command.lower() for command in new.values()):
            self._refilter()  # commands read after the filter was set may match it
        self.refresh_labels()

    def refresh_labels(self) -> None:
        """Labels are computed at render time: drop the cached lines and draw again."""
        self._invalidate()

    def node_for(self, uuid: str) -> TreeNode[str] | None:
        return self._by_uuid.get(uuid)

    @property
    def cursor_uuid(self) -> str | None:
        """The snapshot under the cursor (None on a "… N more" line)."""
        node = self.cursor_node
        return node.data if node is not None and node.data and not node.data.startswith(MORE) else None

    # Filter and jumps -----------------------------------------------------------------------------------

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

    def _open_matches(self, roots: list[str]) -> None:
        """Open every shown node that has shown children, top down (one pass: no per-match ancestor walk)."""
        pending = list(roots)
        while pending:
            uuid = pending.pop()
            kids = self._display_kids(uuid)
            if kids:
                self._populate(uuid)
                self._by_uuid[uuid].expand()
                pending.extend(kids)

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
                self.post_message(self.NeedCommands(unknown))

    def _refilter(self) -> None:
        cursor = self.cursor_uuid
        self.load(self.lineage, self.working)
        target = cursor if cursor in self._by_uuid else None
        if target is None and self._visible is not None:
            target = next((s.uuid for s in self.lineage.snapshots.values()
                           if s.uuid in self._by_uuid and self._matches(s, self.filter_text.lower())), None)
        if target is None and cursor is not None and self._visible is None:
            node = self.reveal(cursor)
            target = cursor if node is not None else None
        if target is not None:
            self.call_after_refresh(self.move_cursor, self._by_uuid[target])

    @property
    def shown(self) -> set[str]:
        """The snapshots that have a node (shown, or under a collapsed branch already built)."""
        return set(self._by_uuid)

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
        if not self._shows(uuid):
            self.set_filter("")
        node = self.reveal(uuid)
        if node is None:
            return False
        self.call_after_refresh(self.move_cursor, node)
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

    # Drawing --------------------------------------------------------------------------------------------

    def render_label(self, node: TreeNode[str], base_style: Style, style: Style) -> Text:
        text = super().render_label(node, base_style, style)
        uuid = node.data
        if uuid and uuid.startswith(MORE):
            _, side, holder = uuid.split(":", 2)
            before, after = self._hidden.get(holder, (0, 0))
            count = before if side == "before" else after
            text.append(f"… {count:,} {'earlier' if side == 'before' else 'later'} snapshots "
                        f"(enter: {min(count, CHUNK):,} more)", self.get_component_rich_style("snapshot-tree--age"))
            text.stylize(style)
            return text
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
        # The outcome beside a node is the one of the run that made it, printed before that run's command
        # (the newest run started FROM a node is another node's producer, or still running: the table's).
        producer = self.lineage.producer(snapshot.uuid)
        if producer is not None:
            icon, kind = op_icon(producer)
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

    def _more_under_cursor(self) -> bool:
        node = self.cursor_node
        if node is not None and node.data and node.data.startswith(MORE):
            self._show_more(node.data)
            return True
        return False

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        if event.node.data and event.node.data.startswith(MORE):  # a click on a "… N more" line
            event.stop()
            self._show_more(event.node.data)

    def action_choose(self) -> None:
        if self._more_under_cursor():
            return
        if self.cursor_uuid:
            self.post_message(self.Chosen(self.cursor_uuid))

    def action_inspect(self) -> None:
        if self.cursor_uuid:
            self.post_message(self.Inspect(self.cursor_uuid))

    def action_expand_or_child(self) -> None:
        node = self.cursor_node
        if node is None or self._more_under_cursor():
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
