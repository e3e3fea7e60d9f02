"""The TUI's operations table and snapshot tree name a pipeline function step's operation as the user wrote it
(`/find primes · sieve(n=20)`), not by the runner's command line (client/step_label.py). On the bootstrapped
Debian image (function steps need python3), through the real app."""

from __future__ import annotations

from pathlib import Path

from contree_tui.pipeline import Exec, Serial
from contree_tui.pipeline.launch import PipelineLaunch
from contree_tui.tui.app import ContreeApp
from tests.pipeline import sample_pipelines as sp
from tests.seeds.conftest import bootstrap_cache, debian_tarball, python_engine  # noqa: F401  (fixtures)
from tests.tui.helpers import until
from tests.tui.test_pipeline_view import ended, view_of

LABEL = "/find primes · sieve(n=23)"


async def test_the_operations_table_and_tree_show_a_function_steps_name(python_engine: tuple[Path, str],  # noqa: F811
                                                                        tmp_path: Path) -> None:
    engine, image = python_engine
    root = Serial({"find primes": Exec(sp.sieve, 23)})
    app = ContreeApp(state_dir=engine, folder=tmp_path, pipeline=PipelineLaunch(root, "t.py:f", image=image))
    async with app.run_test(size=(140, 40)) as pilot:
        view = view_of(pilot)
        await until(pilot, lambda: ended(view), timeout=90, what="the run to end")
        assert view.run is not None
        step = view.run.runs["/find primes"]
        await pilot.press("escape")
        table = app.main.table
        await until(pilot, lambda: step.operation in table.operations, timeout=30, what="the step in the table")
        await until(pilot, lambda: table.operations[step.operation or ""].command == LABEL, timeout=30,
                    what=f"its command to read {LABEL!r}")
        await until(pilot, lambda: app.main.tree.commands.get(step.operation or "") == LABEL, timeout=30,
                    what="the snapshot tree's label")
