"""How runs are named and laid out, without an app: the part of a command that tells parallel runs apart,
the colour a run keeps, and the split view's grid for N runs in a terminal of a given size."""

from __future__ import annotations

import pytest

from contree_tui.tui.op_labels import ColourSlots, distinct_parts

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


def test_a_run_keeps_its_colour_and_eight_side_by_side_all_differ() -> None:
    slots = ColourSlots()
    first = [slots.slot(f"op{n}") for n in range(8)]
    assert len(set(first)) == 8
    assert [slots.slot(f"op{n}") for n in reversed(range(8))] == list(reversed(first))
