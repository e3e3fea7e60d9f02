"""`m` once a `:parallel` has ended, against a real engine: nothing runs, so the merged log opens on the last
batch (the runs of that `:parallel`, not older ones), its title says so, and every branch's lines are in it.
With no run to merge (the table's filter hides them all) a toast says so."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path

import pytest
from textual.widgets import Label

from contree_tui.tui import op_batch
from contree_tui.tui.app import ContreeApp
from contree_tui.tui.widgets.log_merge import MergedLog
from tests.tui.helpers import loaded, run_and_wait, toasts, until

SIZE = (160, 40)


async def test_m_after_a_finished_parallel_merges_its_runs_and_says_so(tui_engine_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(op_batch, "BATCH_WINDOW", 1.5)  # so that the run before the batch is out of it soon
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        table, panel = screen.table, screen.log_panel
        marker = uuidlib.uuid4().hex[:8]
        await run_and_wait(pilot, screen, f"echo before-{marker} > /before")
        await pilot.pause(2.0)  # the clock moves past the batch window: the next runs are a batch of their own
        known = set(table.operations)
        names = ("alpha", "beta", "gamma")
        screen.submit_line(":parallel " + " ;; ".join(f"echo {name}-{marker}; echo {name}-end" for name in names))
        await until(pilot, lambda: len(set(table.operations) - known) == 3, what="three branches")
        batch = set(table.operations) - known
        await until(pilot, lambda: not any(table.operations[uuid].running for uuid in batch), timeout=60,
                    what="the branches to end")
        await until(pilot, lambda: table.running_count == 0, timeout=60, what="no run going (an earlier test's)")

        panel.view.focus()
        await pilot.press("m")
        merged = panel.view.source
        assert isinstance(merged, MergedLog) and set(merged.keys) == batch, "the last batch, not older runs"
        title = str(panel.query_one("#log-title", Label).render())
        assert "merged log · the last batch, 3 runs, ended" in title, title
        await until(pilot, lambda: all(f"{name}-{marker}" in merged.lines.texts for name in names),
                    what="every branch's lines")

        await pilot.press("m")  # back to the selected run's log
        assert panel.merged is None
        table.set_filter(f"nothing-matches-{marker}")
        await pilot.press("m")
        await until(pilot, lambda: any("no runs to merge" in toast for toast in toasts(app)), what="the toast")
        assert [t for t in toasts(app) if "no runs to merge" in t] == [
            f"merged log: no runs to merge (the filter /nothing-matches-{marker} hides them): runs started now "
            "join the merged log"]
        assert "nothing running: runs started now join it" in str(panel.query_one("#log-title", Label).render())
