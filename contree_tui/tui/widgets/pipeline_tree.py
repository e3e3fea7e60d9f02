"""The pipeline's node tree: each node's state as a glyph, an Exec's outcome (duration or `cached`, its
checkpoint), a parent's P/Q/R/D/E/K counts rolled up over its subtree (the executor's counts(path), only those
not zero); a step's network where it is not the run's (`offline`, `offline, wants network`: network_notes.py).
Node data is the node's path; labels are drawn from the run at render time, so an event needs only
`refresh_labels()`, never new nodes (the tree's shape is the pipeline's, fixed for the session)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from contree_tui.pipeline.executor import NodeRun, PipelineRun, State
from contree_tui.pipeline.network_notes import step_network_label
from contree_tui.pipeline.nodes import Exec, Node, Parent

ICONS = {State.PENDING: "○", State.QUEUED: "◌", State.RUNNING: "⟳", State.DONE: "✓", State.ERROR: "✗",
         State.KILLED: "⊘"}
SKIP_ICON = "↷"
STATE_STYLES = {State.PENDING: "muted", State.QUEUED: "running", State.RUNNING: "running", State.DONE: "ok",
                State.ERROR: "failed", State.KILLED: "failed"}
Act = Literal["rerun", "skip", "working"]


def counts_label(counts: dict[State, int]) -> str:
    """`R:2 D:1`: the states a subtree's steps are in, those not zero, in P/Q/R/D/E/K order."""
    return " ".join(f"{state.value}:{n}" for state, n in counts.items() if n)


def format_seconds(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def exec_detail(run: NodeRun, now: float | None = None) -> str:
    """An Exec's outcome in a few cells: `cached → 3f2a9c1d`, `1.2s → 3f2a9c1d`, `1.2s no change`, `exit 3`;
    while it runs (given `now`, time.monotonic()'s), how long so far: `running 12.0s`; `queued` for a slot."""
    if run.skipped:
        return "skipped"
    if run.state is State.ERROR:
        return run.error or "failed"
    if run.state is State.QUEUED:
        return "queued"
    if run.state is State.RUNNING:
        return f"running {format_seconds(max(0.0, now - run.started))}" if now and run.started else "running"
    parts = []
    if run.cached:
        parts.append("cached")
    elif run.duration is not None:
        parts.append(format_seconds(run.duration))
    if run.state is State.DONE and run.result:
        # a step that changed no file leaves its source: an arrow to the same snapshot read as a new checkpoint
        parts.append("no change" if run.result == run.source else f"→ {run.result[:8]}")
    return " ".join(parts)


class PipelineTree(Tree[str]):
    """The pipeline's nodes, every one shown (a pipeline is tens of nodes, not thousands)."""

    BINDINGS = [
        Binding("enter", "act('working')", "Make working", id="pipeline.make-working",
                tooltip="Make the node's checkpoint the working snapshot (then u/U on the main screen; P: back)"),
        Binding("r", "act('rerun')", "Re-run", id="pipeline.rerun",
                tooltip="Run the node or subtree again, forced; the other steps are cache hits if unchanged"),
        Binding("s", "act('skip')", "Skip", id="pipeline.skip",
                tooltip="Skip or unskip the node and its subtree (steps not started yet, and later runs)"),
        Binding("j,down", "cursor_down", "Down", show=False, id="pipeline.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="pipeline.up"),
        Binding("l,right", "expand_or_child", "Expand", show=False, id="pipeline.expand"),
        Binding("h,left", "collapse_or_parent", "Collapse", show=False, id="pipeline.collapse"),
        Binding("g,home", "scroll_home", "Top", show=False, id="pipeline.top"),
        Binding("G,end", "scroll_end", "Bottom", show=False, id="pipeline.bottom"),
        Binding("space", "toggle_node", "Expand/collapse", show=False, id="pipeline.toggle"),
    ]

    # with the widget, so the colours hold wherever the tree is shown
    DEFAULT_CSS = """
    PipelineTree > .pipeline-tree--ok { color: $success; }
    PipelineTree > .pipeline-tree--failed { color: $error; }
    PipelineTree > .pipeline-tree--running { color: $warning; }
    PipelineTree > .pipeline-tree--muted { color: $text-muted; }
    PipelineTree > .pipeline-tree--detail { color: $text-muted; }
    PipelineTree > .pipeline-tree--counts { color: $text-secondary; }
    """

    COMPONENT_CLASSES = {
        "pipeline-tree--ok", "pipeline-tree--failed", "pipeline-tree--running", "pipeline-tree--muted",
        "pipeline-tree--detail", "pipeline-tree--counts",
    }

    class Acted(Message):
        """A key asked for something the screen does to the node at `path`."""

        def __init__(self, what: Act, path: str) -> None:
            super().__init__()
            self.what = what
            self.path = path

    def __init__(self, root: Node, *, id: str | None = None) -> None:
        super().__init__(root.path if not root.name else root.name, data=root.path, id=id)
        self.pipeline = root
        self.run: PipelineRun | None = None
        self.now: Callable[[], float] = time.monotonic  # a running step's time so far (a frozen one in snapshots)
        self._by_path: dict[str, TreeNode[str]] = {root.path: self.root}
        self.show_root = True
        self.guide_depth = 3
        self._add_children(self.root, root)
        self.root.expand_all()

    def _add_children(self, shown: TreeNode[str], node: Node) -> None:
        if not isinstance(node, Parent):
            return
        for name, child in node.children.items():
            if isinstance(child, Parent):
                added = shown.add(name, data=child.path, expand=True)
                self._add_children(added, child)
            else:
                added = shown.add_leaf(name, data=child.path)
            self._by_path[child.path] = added

    def node_for(self, path: str) -> TreeNode[str] | None:
        return self._by_path.get(path)

    @property
    def cursor_path(self) -> str | None:
        node = self.cursor_node
        return node.data if node is not None else None

    def select_path(self, path: str) -> None:
        node = self._by_path.get(path)
        if node is not None:
            self.move_cursor(node)

    def show_run(self, run: PipelineRun | None) -> None:
        self.run = run
        self.refresh_labels()

    def refresh_labels(self) -> None:
        """Labels are computed at render time: drop the cached lines and draw again."""
        self._invalidate()

    def paths(self) -> list[str]:
        """Every node's path, in the order the tree shows them."""
        return [n.path for n in self.pipeline.walk()]

    def action_act(self, what: Act) -> None:
        path = self.cursor_path
        if path is not None:
            self.post_message(self.Acted(what, path))

    def _style(self, name: str) -> Style:
        # the tree measures labels (get_label_width) as nodes are added, before any CSS applies: unstyled then
        return self.get_component_rich_style(name, default=Style())

    def render_label(self, node: TreeNode[str], base_style: Style, style: Style) -> Text:
        path = node.data or "/"
        tree_node = self.pipeline if path == "/" else self.pipeline[path]  # type: ignore[index]
        run = self.run.runs.get(path) if self.run is not None else None
        state = run.state if run is not None else State.PENDING
        skipped = run.skipped if run is not None else tree_node.effective().skip
        icon, kind = (SKIP_ICON, "muted") if skipped and not state.finished else (ICONS[state], STATE_STYLES[state])
        # `s` on a node this run already finished: it ran (its state stays), the next run skips it; the row
        # says so at once (it showed nothing until that next run)
        later = state.finished and not skipped and tree_node.effective().skip
        text = Text()
        text.append(f"{icon} ", self._style(f"pipeline-tree--{kind}"))
        if later:
            text.append(f"{SKIP_ICON} ", self._style("pipeline-tree--muted"))
        text.append(str(node.label))
        detail_style = self._style("pipeline-tree--detail")
        if isinstance(tree_node, Exec):
            detail = exec_detail(run, self.now()) if run is not None and (state is not State.PENDING or skipped) \
                else ""
            if skipped and not detail:
                detail = "skipped"
            if detail:
                text.append(f"  {detail}", self._style("pipeline-tree--failed")
                            if state is State.ERROR else detail_style)
            network = step_network_label(tree_node)  # where it is not the run's (the header says the run's)
            if network:
                text.append(f" · {network}" if detail else f"  {network}", detail_style)
        elif self.run is not None:
            counts = counts_label(self.run.counts(path))
            if counts:
                text.append(f"  {counts}", self._style("pipeline-tree--counts"))
        elif skipped:
            text.append("  skipped", detail_style)
        if later:
            text.append(" · skipped next run", detail_style)
        text.stylize(style)
        return text


__all__ = ["ICONS", "SKIP_ICON", "PipelineTree", "counts_label", "exec_detail"]
