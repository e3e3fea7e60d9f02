"""The pipeline view's bar (its header): steps done of the total, from the run's events, on a real engine."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Label, ProgressBar

from contree_tui.pipeline import Exec, Serial
from contree_tui.pipeline.executor import State
from tests.tui.helpers import until
from tests.tui.test_pipeline_view import SIZE, app_for, ended, marker, view_of


async def test_the_header_bar_counts_the_steps_and_reaches_the_total(tui_engine_dir: Path, tmp_path: Path) -> None:
    tag = marker()
    root = Serial({f"s{i}": Exec(f"echo {tag} {i}" + ("; sleep 3" if i == 3 else "")) for i in range(1, 5)})
    async with app_for(root, tui_engine_dir, tmp_path).run_test(size=SIZE) as pilot:
        view = view_of(pilot)
        bar = view.query_one("#pipeline-header ProgressBar", ProgressBar)
        steps = view.query_one("#pipeline-steps", Label)
        assert bar.total == 4, "the total is known from the tree, before the run"

        await until(pilot, lambda: view.run is not None and view.run.runs["/s3"].state is State.RUNNING,
                    timeout=60, what="the third step to run")
        assert bar.progress == 2 and str(steps.render()) == "2/4 steps"

        await until(pilot, lambda: ended(view), timeout=60, what="the run to end")
        assert view.run is not None and view.run.runs["/"].state is State.DONE
        assert (bar.progress, bar.total, bar.percentage) == (4, 4, 1.0)
        assert str(steps.render()) == "4/4 steps"
