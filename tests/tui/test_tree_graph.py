"""The snapshot tree's lane layout (tree_graph.py), row by row as text: a chain is one straight lane, a branch
forks into the next lane and hangs from its parent's, long runs and crowds of branches fold into one honest
"… N" row, a collapsed snapshot says how many it hides."""

from __future__ import annotations

from itertools import pairwise

from contree_tui.tui.widgets.tree_graph import Kids, Row, Windows, layout, open_path, show_more


def kids_of(*edges: str) -> Kids:
    """`"a>b"` edges, each parent's children in the order given (oldest first)."""
    children: dict[str, list[str]] = {}
    for edge in edges:
        parent, child = edge.split(">")
        children.setdefault(parent, []).append(child)
    return lambda uuid: children.get(uuid, [])


def chain(*names: str) -> list[str]:
    return [f"{a}>{b}" for a, b in pairwise(names)]


def text(rows: list[Row]) -> list[str]:
    lines = []
    for row in rows:
        if row.more is not None:
            lines.append(f"{row.graph()}… {row.more.count} {row.more.kind} {row.more.side}")
        else:
            lines.append(f"{row.graph()}{row.key}" + (f" +{row.hidden}" if row.hidden else ""))
    return lines


def test_a_chain_is_one_straight_lane() -> None:
    rows = layout(["base"], kids_of(*chain("base", "s1", "s2", "s3")))
    assert text(rows) == ["◆ base", "● s1", "● s2", "● s3"]
    assert [row.parent for row in rows] == [None, "base", "s1", "s2"]


def test_a_branch_forks_into_the_next_lane_and_the_newest_child_continues_the_parents() -> None:
    # rolled back to s2 and ran again: s2 has s3 (older, with s4 after it) and s3b (newer)
    kids = kids_of(*chain("base", "s1", "s2", "s3", "s4"), "s2>s3b", "s3b>s4b")
    assert text(layout(["base"], kids)) == [
        "◆ base",
        "● s1",
        "● s2",
        "├─● s3",
        "│ ● s4",
        "● s3b",
        "● s4b",
    ]


def test_parallel_branches_and_nested_forks_never_cross() -> None:
    # three branches from w; the first branched again twice, its middle branch forked once more
    kids = kids_of("base>w", "w>p1", "w>p2", "w>p3", "p1>x", "p1>y", "p1>z", "y>y1", "y>y2", "y1>y1a", "p3>p3a")
    assert text(layout(["base"], kids)) == [
        "◆ base",
        "● w",
        "├─● p1",
        "│ ├─● x",
        "│ ├─● y",
        "│ │ ├─● y1",
        "│ │ │ ● y1a",
        "│ │ ● y2",
        "│ ● z",
        "├─● p2",
        "● p3",
        "● p3a",
    ]


def test_every_root_starts_at_the_left_with_its_own_mark() -> None:
    kids = kids_of("busybox>a", "busybox>b", "alpine>c")
    assert text(layout(["alpine", "busybox"], kids)) == ["◆ alpine", "● c", "◆ busybox", "├─● a", "● b"]


def test_a_deep_chain_shows_its_ends_and_the_newest_window() -> None:
    names = ["base", *[f"s{n}" for n in range(1, 10_001)]]
    rows = layout(["base"], kids_of(*chain(*names)), window=3)
    assert text(rows) == ["◆ base", "┊ … 9996 chain before", "● s9997", "● s9998", "● s9999", "● s10000"]
    assert rows[2].parent == "s9996", "a row after a fold still names its real parent"


def test_many_branches_fold_the_oldest_and_keep_the_width_at_two_lanes() -> None:
    kids = kids_of(*[f"base>b{n}" for n in range(1, 1001)])
    assert text(layout(["base"], kids, window=3)) == [
        "◆ base",
        "├─┊ … 996 fork before",
        "├─● b997",
        "├─● b998",
        "├─● b999",
        "● b1000",
    ]


def test_more_rows_open_a_chunk_and_a_jump_moves_the_fold_around_its_target() -> None:
    names = ["base", *[f"s{n}" for n in range(1, 21)]]
    kids = kids_of(*chain(*names))
    windows: Windows = {}
    open_path(names, kids, (), windows, window=4)
    assert windows == {}, "the tip has a row already: its ancestors stay folded, the fold still follows the tip"
    more = layout(["base"], kids, windows=windows, window=4)[1].more
    assert more is not None and more.count == 15
    show_more(more, windows, 10)
    assert text(layout(["base"], kids, windows=windows, window=4))[:3] == ["◆ base", "┊ … 5 chain before", "● s6"]

    open_path(names[:4], kids, (), windows, window=4)  # base > s1 > s2 > s3: s3 must get a row
    assert text(layout(["base"], kids, windows=windows, window=4)) == [
        "◆ base", "● s1", "● s2", "● s3", "● s4", "┊ … 15 chain after", "● s20"]


def test_a_collapsed_snapshot_ends_its_lane_and_counts_what_it_hides() -> None:
    kids = kids_of(*chain("base", "s1", "s2", "s3"), "s1>t1", "t1>t2")
    assert text(layout(["base"], kids, collapsed={"s2"})) == ["◆ base", "● s1", "├─● s2 +1", "● t1", "● t2"]
    assert text(layout(["base"], kids, collapsed={"s1"})) == ["◆ base", "● s1 +4"]
