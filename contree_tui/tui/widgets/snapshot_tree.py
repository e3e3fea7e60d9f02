"""The snapshot tree: every image below the one it was made from, drawn as lanes (tree_graph.py), the
working snapshot marked ◉.

A Textual Tree whose nodes are all rows of one flat list, each label prefixed with its lane cells: the Tree
keeps its keys, mouse, scrolling and render-time labels (a status change or the clock moving on needs only a
refresh), and its indentation guides never draw (they would nest a 10,000-run chain 10,000 levels deep).
Which rows exist is the layout's business; any change of structure (a new snapshot, `h`, `l`, a filter, a
fold opened) lays the rows out again and keeps the cursor on its snapshot. Nothing collapses by itself: a new
snapshot, and the way to the working one, open every collapsed snapshot above them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from contree_tui.tui.model import Lineage
from contree_tui.tui.outcome import op_icon
from contree_tui.tui.widgets.tree_graph import (
    MORE,
    WINDOW,
    WORKING,
    Row,
    Runs,
    Windows,
    layout,
    open_path,
    show_more,
)
from contree_tui.tui.widgets.tree_search import TreeSearch

Clock = Callable[[], datetime]

COMMAND_WIDTH = 36  # a command's room before the tree is laid out (no width yet), and in the scroll range
CHUNK = 1000  # shown per press on a "… N more" row
__all__ = ["CHUNK", "MORE", "WINDOW", "Clock", "SnapshotTree", "format_age", "utc_now"]

_FOLDED = {("chain", "before"): "earlier snapshots", ("chain", "after"): "later snapshots",
           ("fork", "before"): "earlier branches", ("fork", "after"): "later branches"}


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


def fit_command(command: str, room: int) -> str:
    """`command` on one line in at most `room` cells, cut with an ellipsis when longer."""
    one_line = " ".join(command.split())
    if cell_len(one_line) <= room:
        return one_line
    cut = Text(one_line)
    cut.truncate(room, overflow="ellipsis")  # wide characters count two cells, as the terminal draws them
    return cut.plain


class SnapshotTree(TreeSearch, Tree[str]):
    """Node data is the row's key: the image uuid, or a "… N more" key (tree_graph.MORE)."""

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
        "snapshot-tree--graph",
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
        self.collapsed: set[str] = set()  # snapshots whose descendants the user hid (`h`), kept across reloads
        self.windows: Windows = {}  # folds moved by "… more" rows and jumps (tree_graph.open_path)
        self._rows: list[Row] = []
        self._index: dict[str, int] = {}  # row key -> row number
        self._row_nodes: dict[str, TreeNode[str]] = {}
        self._asked: set[str] = set()  # operations whose commands were asked for already
        self._kids_cache: dict[str, list[str]] = {}
        self._runs: Runs = {}  # kept between layouts, as the children (_kids)
        self._roots: list[str] | None = None
        self._checked: set[str] = set()  # row keys whose commands were looked for
        self.filter_text = ""
        self._visible: set[str] | None = None  # with a filter: the matches and their ancestors
        super().__init__("snapshots", id=id)
        self.show_root = False
        self.auto_expand = False

    # Building -------------------------------------------------------------------------------------------

    def load(self, lineage: Lineage, working: str | None) -> None:
        """Show `lineage` afresh, the way to the working snapshot open (with a filter: every match)."""
        self.lineage = lineage
        self.working = working
        self._visible = self._matching(self.filter_text) if self.filter_text else None
        self._forget()
        self._checked.clear()  # a reload asks again for commands still unknown (a fetch may have failed)
        self._asked.clear()
        if working and self._shows(working):
            self._open(working)
        self._relayout()
        self._title()

    def _forget(self, parent: str | None = None) -> None:
        """Drop what was kept between layouts: all of it, or what a new child of `parent` changes (its
        children, and the run through it if it had an only child)."""
        if parent is None or parent not in self.lineage.snapshots:
            self._kids_cache.clear()
            self._runs.clear()
            self._roots = None
            return
        known = self._kids_cache.pop(parent, None)
        if known is None or len(known) != 1:
            return  # a run's last snapshot (it extends itself) or a branch point (the child starts a run)
        head = parent  # it had an only child, so its run is cut here: drop the run, from where it starts
        while (above := self.lineage.parent_of(head)) is not None and len(self._kids_cache.get(above, ())) == 1:
            head = above
        self._runs.pop(head, None)

    def _shows(self, uuid: str) -> bool:
        return self._visible is None or uuid in self._visible

    def _kids(self, uuid: str) -> list[str]:
        """Shown children, oldest first; kept between layouts (sorting each node's children on every layout
        was most of the 87 ms an 8-chain 10,000-image lineage took), dropped where the lineage changed."""
        kids = self._kids_cache.get(uuid)
        if kids is None:
            kids = self._kids_cache[uuid] = [child.uuid for child in self.lineage.children_of(uuid)
                                             if self._shows(child.uuid)]
        return kids

    def _open(self, uuid: str) -> None:
        """Uncollapse everything above `uuid` and move the folds so that it gets a row."""
        path = [*self.lineage.ancestors(uuid), uuid]
        if self.collapsed.intersection(path[:-1]):
            self.collapsed.difference_update(path[:-1])
            self._forget()  # runs end at a collapsed snapshot
        open_path(path, self._kids, self.collapsed, self.windows)

    def _relayout(self, *, keep_line: bool = False) -> None:
        """Lay the rows out again; the cursor stays on its snapshot (on a "… more" row, or with `keep_line`:
        on its line)."""
        cursor, line = self.cursor_uuid, self.cursor_line
        if self._roots is None:
            self._roots = [s.uuid for s in self.lineage.roots() if self._shows(s.uuid)]
        self._rows = layout(self._roots, self._kids, collapsed=self.collapsed, windows=self.windows, runs=self._runs)
        self._index = {row.key: number for number, row in enumerate(self._rows)}
        self._row_nodes = self._reuse_nodes()
        last = self.last_line  # builds the lines now, so node lines and the cursor are right at once
        self._ask_commands()
        if cursor is not None and cursor in self._index and not keep_line:
            self._put_cursor(self._index[cursor])
        elif line >= 0 and last >= 0:
            self._put_cursor(min(line, last))

    def _reuse_nodes(self) -> dict[str, TreeNode[str]]:
        """One flat leaf per row, the ones already there given the new rows' keys: a layout after a run adds
        one node, not all of them again (add_leaf costs ~0.12 ms, a relayout of 1,600 rows ~190 ms that way
        on a loaded machine)."""
        nodes = list(self.root.children)
        if len(nodes) - len(self._rows) > 100:  # each removal scans the children: start afresh instead
            self.clear()
            nodes = []
        for extra in reversed(nodes[len(self._rows):]):
            extra.remove()
        nodes = nodes[:len(self._rows)]
        nodes.extend(self.root.add_leaf("", data=row.key) for row in self._rows[len(nodes):])
        for node, row in zip(nodes, self._rows, strict=True):
            node.data = row.key
        self._invalidate()
        return {row.key: node for node, row in zip(nodes, self._rows, strict=True)}

    def _put_cursor(self, line: int) -> None:
        self.cursor_line = line
        self.call_after_refresh(self.scroll_to_line, line, False)

    def _ask_commands(self) -> None:
        wanted = []
        fresh = self._index.keys() - self._checked
        self._checked.update(fresh)
        for key in fresh:
            snapshot = self.lineage.get(key)
            op = snapshot.operation if snapshot is not None else None
            if op and op not in self.commands and op not in self._asked:
                wanted.append(op)
        if wanted:
            self._asked.update(wanted)
            self._ask_for(wanted)

    def _ask_for(self, operations: list[str]) -> None:
        self.post_message(self.NeedCommands(operations))

    def reveal(self, uuid: str) -> TreeNode[str] | None:
        """Give `uuid` a row (opening what hides it: a collapse, a fold); returns its node."""
        if uuid not in self._index and uuid in self.lineage.snapshots and self._shows(uuid):
            self._open(uuid)
            self._relayout()
        return self._row_nodes.get(uuid)

    def add_snapshot(self, uuid: str) -> None:
        """A snapshot just made (already in the lineage): shown at once, whatever was collapsed above it (with
        a filter: if it matches)."""
        parent = self.lineage.parent_of(uuid)
        self._forget(parent)
        if uuid in self._index:
            return
        if self._visible is not None:
            snapshot = self.lineage.get(uuid)
            if snapshot is not None and self._matches(snapshot, self.filter_text.lower()):
                self._refilter()
            return
        if parent not in self._index or parent in self.collapsed:
            self._open(uuid)  # the newest child continues its parent's lane: hidden only if its parent is
        self._relayout()

    def set_working(self, uuid: str | None, *, move_cursor: bool = True) -> None:
        """Mark `uuid` working and give it a row; nothing else changes (no other snapshot collapses)."""
        self.working = uuid
        node = self.reveal(uuid) if uuid else None
        if node is not None and move_cursor:
            self._put_cursor(self._index[uuid])  # type: ignore[index]
        self.refresh_labels()

    def set_commands(self, commands: dict[str, str]) -> None:
        new = {op: command for op, command in commands.items() if self.commands.get(op) != command}
        self.commands.update(commands)
        query = self.filter_text.lower()
        if query and any(query in command.lower() for command in new.values()):
            self._refilter()  # commands read after the filter was set may match it
        self.refresh_labels()

    def refresh_labels(self) -> None:
        """Labels are computed at render time: drop the cached strips and draw the visible lines again. Not
        Tree._invalidate: that also rebuilds the line list, measuring every label (1,600 rows: ~80 ms), and
        this runs on every operation update."""
        self._updates += 1
        self.refresh()

    def get_label_width(self, node: TreeNode[str]) -> int:
        """Only the horizontal scroll range depends on it: the lane cells, the tag and a command's room
        (render_label for every row, as Tree does, was half of a first paint)."""
        number = self._index.get(node.data or "")
        return 0 if number is None else len(self._rows[number].lead) + 2 + 24 + COMMAND_WIDTH

    def node_for(self, uuid: str) -> TreeNode[str] | None:
        return self._row_nodes.get(uuid)

    def row_of(self, uuid: str) -> Row | None:
        """The layout row of `uuid` (its lane, the snapshot it hangs from), None if it has no row."""
        number = self._index.get(uuid)
        return self._rows[number] if number is not None else None

    @property
    def cursor_uuid(self) -> str | None:
        """The snapshot under the cursor (None on a "… N more" row)."""
        node = self.cursor_node
        return node.data if node is not None and node.data and not node.data.startswith(MORE) else None

    @property
    def shown(self) -> set[str]:
        """The snapshots that have a row."""
        return {key for key in self._index if not key.startswith(MORE)}

    # Drawing --------------------------------------------------------------------------------------------

    def render_label(self, node: TreeNode[str], base_style: Style, style: Style) -> Text:
        text = Text()
        number = self._index.get(node.data or "")
        if number is None:
            return text
        row = self._rows[number]
        part = self.get_component_rich_style
        if row.more is not None:
            text.append(row.graph(), part("snapshot-tree--graph"))
            count = row.more.count
            text.append(f"… {count:,} {_FOLDED[(row.more.kind, row.more.side)]} (enter: {min(count, CHUNK):,} more)",
                        part("snapshot-tree--age"))
            text.stylize(style)
            return text
        snapshot = self.lineage.get(row.key)
        if snapshot is None:
            return text
        text.append(row.lead, part("snapshot-tree--graph"))
        if row.key == self.working:
            text.append(f"{WORKING} ", part("snapshot-tree--working"))
        else:
            text.append(row.graph()[len(row.lead):], part("snapshot-tree--graph"))
        if row.hidden:
            text.append(f"+{row.hidden:,} ", part("snapshot-tree--age"))  # collapsed: what `l` shows again
            if self.working and row.key in self.lineage.ancestors(self.working):
                text.append(f"{WORKING} ", part("snapshot-tree--working"))  # the working one is in there
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
            room = self._command_room(text.cell_len + 1)
            text.append(f" {fit_command(command, room)}", part("snapshot-tree--command"))
        text.stylize(style)
        return text

    def _command_room(self, used: int) -> int:
        """The cells left for a command after `used` on its line: the pane's width, not a fixed 36 (a 200-column
        terminal cut `make -C build test-integration …` in a 90-cell tree); the tree hides what overflows, so a
        cut command must say so with its ellipsis inside the pane."""
        width = self.scrollable_content_region.width
        return max(1, width - used) if width > 0 else COMMAND_WIDTH

    # Keys -----------------------------------------------------------------------------------------------

    def _cursor_row(self) -> Row | None:
        node = self.cursor_node
        number = self._index.get(node.data or "") if node is not None else None
        return self._rows[number] if number is not None else None

    def _more_under_cursor(self) -> bool:
        row = self._cursor_row()
        if row is not None and row.more is not None:
            show_more(row.more, self.windows, CHUNK)
            self._relayout(keep_line=True)
            return True
        return False

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        if event.node.data and event.node.data.startswith(MORE):  # a click on a "… N more" row
            event.stop()
            self._more_under_cursor()

    def action_choose(self) -> None:
        if self._more_under_cursor():
            return
        if self.cursor_uuid:
            self.post_message(self.Chosen(self.cursor_uuid))

    def action_inspect(self) -> None:
        if self.cursor_uuid:
            self.post_message(self.Inspect(self.cursor_uuid))

    def action_expand_or_child(self) -> None:
        """`l`: open a collapsed snapshot or a fold; else down to the first child (always the next row)."""
        row = self._cursor_row()
        if row is None or self._more_under_cursor():
            return
        if row.key in self.collapsed:
            self.collapsed.discard(row.key)
            self._forget()
            self._relayout()
        elif row.kids:
            self.action_cursor_down()

    def action_collapse_or_parent(self) -> None:
        """`h`: collapse a snapshot that shows children; else up to the one it hangs from."""
        row = self._cursor_row()
        if row is None:
            return
        if row.kids and row.key not in self.collapsed and row.more is None:
            self.collapsed.add(row.key)
            self._forget()
            self._relayout()
        elif row.parent is not None and row.parent in self._index:
            self._put_cursor(self._index[row.parent])
        elif self.cursor_line > 0 and self._rows[self.cursor_line - 1].more is not None:
            self._put_cursor(self.cursor_line - 1)  # its parent is folded into the "… more" row above

    def action_toggle_node(self) -> None:
        row = self._cursor_row()
        if row is None or row.more is not None or not row.kids:
            return
        self.collapsed.symmetric_difference_update({row.key})
        self._forget()
        self._relayout()
