"""How runs are named and laid out, without an app: the part of a command that tells parallel runs apart,
the colour a run keeps, and the split view's grid for N runs in a terminal of a given size."""

from __future__ import annotations

import pytest

from contree_tui.tui.model import Operation
from contree_tui.tui.op_labels import ColourSlots, distinct_parts, operation_labels
from contree_tui.tui.screens.split_logs import split_layout, watched_to_show

LOOP = 'for i in $(seq 1 50); do echo "{} $i"; sleep 0.1; done'


@pytest.mark.parametrize(("commands", "labels"), [
    ([LOOP.format("alpha"), LOOP.format("beta")], ["…echo alpha…", "…echo beta…"]),
    (["python train.py --lr 0.1", "python train.py --lr 0.001 --epochs 3"],
     ["…--lr 0.1", "…--lr 0.001 --epoch…"]),
    (["make test", "pytest -x tests/very/long/path/test_x.py"], ["make test", "pytest -x tests/ver…"]),
    (["sleep 5", "sleep 5"], ["sleep 5 #1", "sleep 5 #2"]),
    (["echo hi"], ["echo hi"]),
])
def test_a_branch_is_named_by_what_tells_its_command_apart(commands: list[str], labels: list[str]) -> None:
    assert distinct_parts(commands) == labels


def test_runs_of_one_program_are_told_apart_among_themselves_and_whole_commands_shown_when_they_fit() -> None:
    commands = ["while sleep 1; do date; done", "./train.sh --lr 0.1", "./train.sh --lr 0.01", "./train.sh --lr 0.001"]
    ops = [Operation(uuid=f"op{n}", command=command, image=None) for n, command in enumerate(commands)]
    assert list(operation_labels(ops).values()) == ["while sleep 1; do d…", "…--lr 0.1", "…--lr 0.01", "…--lr 0.001"]
    assert list(operation_labels(ops, width=30).values()) == commands
    tagged = operation_labels(ops, tag_of=lambda uuid: "best-model, v2" if uuid == "r1" else None)
    assert tagged["op1"] == "…--lr 0.1"  # no result yet: no tag
    ops[1].image = ops[1].result = "r1"  # changed no file: its result is the image it ran on, not its own
    assert operation_labels(ops, tag_of=lambda uuid: "busybox:latest" if uuid == "r1" else None)["op1"] == "…--lr 0.1"
    ops[1].image = "r0"
    assert operation_labels(ops, tag_of=lambda uuid: "best-model, v2" if uuid == "r1" else None)["op1"] == "best-model"


def test_a_run_keeps_its_colour_and_eight_side_by_side_all_differ() -> None:
    slots = ColourSlots()
    first = [slots.slot(f"op{n}") for n in range(8)]
    assert len(set(first)) == 8
    assert [slots.slot(f"op{n}") for n in reversed(range(8))] == list(reversed(first))


@pytest.mark.parametrize(("count", "size", "layout"), [
    (2, (160, 43), (2, 1, 2)),  # side by side
    (3, (160, 43), (2, 2, 3)),  # a 2x2 grid, the last pane filling its row
    (4, (160, 43), (2, 2, 4)),
    (6, (160, 43), (3, 2, 6)),
    (12, (160, 43), (3, 3, 9)),  # the newest 9, "+3 more"
    (3, (80, 22), (1, 2, 2)),  # 80x24: two stacked, "+1 more"
    (2, (100, 22), (2, 1, 2)),
])
def test_the_split_view_lays_runs_out_like_tmux(count: int, size: tuple[int, int],
                                                layout: tuple[int, int, int]) -> None:
    assert split_layout(count, *size) == layout


def test_without_room_the_running_runs_keep_their_panes_before_the_ended_ones() -> None:
    running = {"b", "d"}.__contains__
    assert watched_to_show(["a", "b", "c", "d"], 2, running) == ["b", "d"]
    assert watched_to_show(["a", "b", "c", "d"], 3, running) == ["b", "c", "d"]
    assert watched_to_show(["a", "b", "c", "d"], 1, running) == ["d"]
    assert watched_to_show(["a", "b", "c"], 2, lambda uuid: False) == ["b", "c"], "none running: the newest"
    assert watched_to_show(["a", "b"], 5, running) == ["a", "b"]
