"""The snapshot tree's lane layout, as `git log --graph --topo-order` draws history, turned top down: the
oldest at the top, each snapshot on the row after the one it was made from when it continues that lane.

    ◆ busybox             a root: nothing above it
    ● 1                   the only child of busybox, on busybox's lane
    ├─● 2                 a branch: it hangs from the lane at its left (1's), on a lane of its own
    │ ● 3                 2's child, under it
    ● 4                   1's newest child continues 1's lane, after 1's other branches

How lanes are given (compared with git's graph.c, lazygit's graph.go and tig's graph-v2): those lay out a
DAG newest first, where a column waits for a parent and columns waiting for the same commit collapse at once
(`|/`). A snapshot has one parent, so turned top down every row has one incoming edge and the only event is
a fork. The newest child keeps its parent's lane (git's first parent keeps its column); every other child
forks into the lowest free lane, which is always the parent's lane + 1: the only lanes still open are the
trunks of ancestors waiting for their newest child, all to the left. So no edge ever crosses another, the
width is the nesting depth of forks (not the number of siblings), and each fork costs no extra row.

Compact without lying: a run of only children longer than WINDOW shows its first and last snapshot and a
window between, the rest folded into a `┊ … N earlier snapshots` row on the same lane (a straight chain is
all such a row can stand for); a snapshot with more than WINDOW branches folds its oldest ones into one
`├─┊ … N earlier branches` row; a collapsed snapshot (`h`) says how many it hides. Pure Python, no Textual:
the widget (snapshot_tree.py) turns rows into lines.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Literal

Kids = Callable[[str], list[str]]
Side = Literal["before", "after"]
Kind = Literal["chain", "fork"]
Windows = dict[tuple[Kind, str], tuple[int, int]]  # (kind, holder) -> hidden before / after the window
Runs = dict[str, list[str]]  # a run's first snapshot -> the run

# Textual builds a line for every row up front and every structural change lays all rows out again: 8 chains
# of 1,250 cost ~100 ms a new snapshot with 200 rows each (1,600), all 10,000 took 1.7 s to paint
# (bench/bench_tui_tree.py); the newest are where a session works, and one `enter` shows 1,000 more.
WINDOW = 100
MORE = "\0more"  # a "… N more" row's key: f"{MORE}:{kind}:{side}:{holder}"

NODE, ROOT, WORKING = "●", "◆", "◉"
FOLD = "┊"  # a folded straight chain, or folded branches


@dataclass(frozen=True)
class More:
    """A row standing for `count` snapshots (kind chain) or branches (kind fork) folded away."""

    kind: Kind
    side: Side
    holder: str  # chain: the run's first snapshot; fork: the branch point
    count: int

    @property
    def key(self) -> str:
        return f"{MORE}:{self.kind}:{self.side}:{self.holder}"


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ made a 1,600-row layout 3x slower
class Row:
    key: str  # the snapshot's uuid, or More.key
    lead: str  # the lane cells left of this row's own lane: "│ ", "  ", or "├─" where a branch forks off
    lane: int
    parent: str | None = None  # the snapshot this row hangs from (None: a root, or a "more" row)
    kids: int = 0  # shown children (a collapsed snapshot's too)
    hidden: int = 0  # a collapsed snapshot: how many snapshots below it are not drawn
    more: More | None = None

    def graph(self, glyph: str | None = None) -> str:
        """The cells before the label: the lead, this row's mark, a space."""
        if self.more is not None:
            return f"{self.lead}{FOLD} "
        mark = glyph or (ROOT if self.parent is None else NODE)
        return f"{self.lead}{mark} "


@dataclass(frozen=True)
class _Run:
    head: str
    lane: int
    parent: str | None
    forked: bool


def _lead(open_lanes: list[bool], lane: int, forked: bool) -> str:
    cells = ["│ " if open_lanes[i] else "  " for i in range(lane)]
    if forked:
        cells[lane - 1] = "├─"
    return "".join(cells)


def _window(total: int, state: tuple[int, int] | None, window: int) -> tuple[int, int]:
    """(hidden before, hidden after) of `total` items: the newest `window` unless `state` says otherwise."""
    if total <= window:
        return (0, 0) if state is None else (min(state[0], total), min(state[1], max(0, total - state[0])))
    before, after = state if state is not None else (total - window, 0)
    before = min(before, total)
    return before, min(after, total - before)


def _chain(head: str, kids: Kids, collapsed: Collection[str], runs: Runs | None = None) -> tuple[list[str], list[str]]:
    """The run from `head` through only children, and the children of its last snapshot. A run kept in
    `runs` is walked on from its last snapshot only (walking a 10,000-run chain on every layout was most of
    a layout's time); a run that grew a child at its end extends itself, one cut in the middle must be
    dropped by the owner."""
    nodes = runs.get(head) if runs is not None else None
    if nodes is None:
        nodes = [head]
    while True:
        below = kids(nodes[-1])
        if len(below) != 1 or nodes[-1] in collapsed:
            if runs is not None:
                runs[head] = nodes
            return nodes, below
        nodes.append(below[0])


def count_below(uuid: str, kids: Kids) -> int:
    """Every snapshot under `uuid` (iterative: a chain may be 10,000 deep)."""
    total, pending = 0, [uuid]
    while pending:
        below = kids(pending.pop())
        total += len(below)
        pending.extend(below)
    return total


def layout(roots: Iterable[str], kids: Kids, *, collapsed: Collection[str] = (), windows: Windows | None = None,
           window: int = WINDOW, runs: Runs | None = None) -> list[Row]:
    """The rows, top down. `kids(uuid)` gives the shown children oldest first; `collapsed` snapshots hide all
    below them; `windows` moves the fold of a long run or a crowd of branches (see `centre`); `runs` keeps
    the runs walked, for the next layout (its owner drops a run when it changes)."""
    windows = windows if windows is not None else {}
    rows: list[Row] = []
    open_lanes: list[bool] = []
    stack: list[_Run | Row] = [_Run(root, 0, None, False) for root in reversed(list(roots))]
    while stack:
        item = stack.pop()
        if isinstance(item, Row):
            rows.append(item)
            continue
        lane = item.lane
        while len(open_lanes) <= lane:
            open_lanes.append(False)
        open_lanes[lane] = False  # this run now occupies the lane its branch point kept open
        nodes, below = _chain(item.head, kids, collapsed, runs)
        end = nodes[-1]
        folded = end in collapsed and bool(below)
        hidden = count_below(end, kids) if folded else 0
        rows.append(Row(item.head, _lead(open_lanes, lane, item.forked), lane, item.parent,
                        len(below) if item.head == end else 1, hidden if item.head == end else 0))
        if len(nodes) > 1:
            rows.extend(_run_rows(nodes, below, hidden, _lead(open_lanes, lane, False), lane,
                                  windows.get(("chain", item.head)), window))
        if folded or len(below) < 2:
            continue
        # a branch point: its newest child continues this lane after the others, which fork to the next one
        open_lanes[lane] = True
        forks = below[:-1]
        before, after = _window(len(forks), windows.get(("fork", end)), window)
        stack.append(_Run(below[-1], lane, end, False))
        fork_lead = _lead([*open_lanes, False], lane + 1, True)
        if after:
            more = More("fork", "after", end, after)
            stack.append(Row(more.key, fork_lead, lane + 1, more=more))
        stack.extend(_Run(uuid, lane + 1, end, True) for uuid in reversed(forks[before:len(forks) - after]))
        if before:
            more = More("fork", "before", end, before)
            stack.append(Row(more.key, fork_lead, lane + 1, more=more))
    return rows


def _run_rows(nodes: list[str], below: list[str], hidden: int, lead: str, lane: int,
              state: tuple[int, int] | None, window: int) -> list[Row]:
    """The rows of a run after its first snapshot: the interior (its window and folds), then its last."""
    rows = []
    head, interior = nodes[0], nodes[1:-1]
    before, after = _window(len(interior), state, window)
    if before:
        more = More("chain", "before", head, before)
        rows.append(Row(more.key, lead, lane, more=more))
    rows.extend(Row(interior[index], lead, lane, nodes[index], 1) for index in range(before, len(interior) - after))
    if after:
        more = More("chain", "after", head, after)
        rows.append(Row(more.key, lead, lane, more=more))
    rows.append(Row(nodes[-1], lead, lane, nodes[-2], len(below), hidden))
    return rows


def centre(index: int, total: int, window: int = WINDOW) -> tuple[int, int]:
    """(hidden before, hidden after) of a fold of `total` whose window puts item `index` in its middle."""
    before = max(0, min(index - window // 2, total - window))
    return before, max(0, total - before - window)


def open_path(path: list[str], kids: Kids, collapsed: Collection[str], windows: Windows,
              window: int = WINDOW) -> None:
    """Move the folds so that the last snapshot of `path` (a root first, each the parent of the next; none of
    them collapsed) has a row of its own: every branch on the way out of its fork's fold, and the snapshot
    out of its run's (its ancestors may stay folded: a fold of a straight chain hides nothing below it)."""
    head = 0  # index in `path` of the current run's first snapshot
    for index in range(1, len(path)):
        parent, uuid = path[index - 1], path[index]
        siblings = kids(parent)
        if len(siblings) != 1:
            head = index
            forks = siblings[:-1]
            if uuid in forks:
                position = forks.index(uuid)
                before, after = _window(len(forks), windows.get(("fork", parent)), window)
                if not before <= position < len(forks) - after:
                    windows[("fork", parent)] = centre(position, len(forks), window)
            continue
        if index != len(path) - 1:
            continue
        run, _ = _chain(path[head], kids, collapsed)
        position = index - head - 1  # in the run's interior (between its first and last snapshot)
        interior = len(run) - 2
        if 0 <= position < interior:
            before, after = _window(interior, windows.get(("chain", path[head])), window)
            if not before <= position < interior - after:
                windows[("chain", path[head])] = centre(position, interior, window)


def show_more(more: More, windows: Windows, chunk: int) -> None:
    """`chunk` more of what `more` folds, on its side."""
    state = windows.get((more.kind, more.holder))
    before, after = state if state is not None else (more.count if more.side == "before" else 0,
                                                     more.count if more.side == "after" else 0)
    if more.side == "before":
        before = max(0, before - chunk)
    else:
        after = max(0, after - chunk)
    windows[(more.kind, more.holder)] = (before, after)

