"""Parallel runs in the operations table, against a real engine: three `:parallel` branches that share a long
head (`for i in $(seq 1 3); do echo …; echo alpha$i; done`) were three identical cells, every one cut to the
same prefix; each now shows on screen the word that tells it from its siblings, at 160 and at 80 columns."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

import pytest

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.widgets.operations_cells import command_cell, command_need, departures
from contree_tui.tui.widgets.operations_table import OperationsTable
from tests.tui.helpers import loaded, run_in_bar, until
from tests.tui.test_operations_narrow import command_cells_on_screen

BRANCHES = ("alpha", "beta", "gamma")


def on_screen(table: OperationsTable, uuid: str) -> str:
    """The command cell as far as the pane shows it."""
    return str(table.get_cell(uuid, "command"))[: command_cells_on_screen(table)]


def test_a_command_keeps_its_head_and_the_part_that_differs() -> None:
    commands = [f"for i in $(seq 1 50); do echo {b}$i; sleep 0.1; done" for b in BRANCHES] + ["echo hi"]
    departs = departures(commands)
    cells = [command_cell(c, 27, departs[c]) for c in commands]
    assert cells[:3] == ["for i in…alpha$i; sleep 0.…", "for i in…beta$i; sleep 0.1…",
                         "for i in…gamma$i; sleep 0.…"], cells
    assert all(len(cell) == 27 for cell in cells[:3])
    assert cells[3] == "echo hi"
    assert command_cell(commands[0], 60, departs[commands[0]]) == commands[0], "whole when it fits"
    assert command_cell("echo a very long command with no sibling at all", 20) == "echo a very long co…"
    assert command_need(commands[0], departs[commands[0]]) == len("for i in…") + 20
    assert command_need("echo hi") == len("echo hi")


@pytest.mark.parametrize("size", [(160, 40), (80, 24)], ids=["160x40", "80x24"])
async def test_parallel_branches_read_apart_in_the_table(tui_engine_dir: Path, size: tuple[int, int]) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=size) as pilot:
        screen = await loaded(pilot)
        marker = uuidlib.uuid4().hex[:12]
        commands = [f"for i in $(seq 1 3); do echo {marker}; echo {b}$i; done" for b in BRANCHES]
        await run_in_bar(pilot, ":parallel " + " ;; ".join(commands))
        table = screen.table

        def branches() -> dict[str, str]:
            return {next(b for b in BRANCHES if f"{b}$i" in op.command): op.uuid
                    for op in table.operations.values() if marker in op.command}

        await until(pilot, lambda: len(branches()) == 3 and all(u in table.rows for u in branches().values()),
                    what="the three branches in the table")
        await pilot.pause()
        shown = {branch: on_screen(table, uuid) for branch, uuid in branches().items()}
        assert len(set(shown.values())) == 3, f"three cells that read apart: {shown}"
        for branch, text in shown.items():
            assert f"{branch}$i" in text, f"{branch}: {text!r} (visible cells: {command_cells_on_screen(table)})"
            assert text.startswith("for i"), "the head stays: what kind of command it is"
        assert table.shown_columns[0] == "status"
