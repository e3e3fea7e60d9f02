"""A run that has started but printed nothing yet shows as running, not pending (against a real engine). The
table used to learn EXECUTING from the first line of output only: the README's tour (`:parallel sleep 3; echo
one ;; …`) showed its three branches "◌ pending" for their whole sleep while `contree-tui ops` said executing,
and a `sleep 60` stayed "pending" for a minute."""

from __future__ import annotations

from pathlib import Path

from contree_client.models import OperationStatus

from contree_tui.tui.app import ContreeApp
from tests.tui.helpers import cancel_leftovers, loaded, run_in_bar, until


async def test_a_run_that_prints_nothing_yet_shows_executing(tui_engine_dir: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await loaded(pilot)
        await cancel_leftovers(pilot, screen)
        await run_in_bar(pilot, "sleep 30")
        table = screen.table

        def mine() -> list[object]:
            return [op for op in table.operations.values() if op.command == "sleep 30" and op.running]

        await until(pilot, lambda: mine(), what="the run's row")
        op = mine()[0]
        try:
            await until(pilot, lambda: op.status is OperationStatus.EXECUTING, timeout=20,  # type: ignore[attr-defined]
                        what="the silent run to show executing")
            assert "executing" in str(table.get_cell(op.uuid, "status"))  # type: ignore[attr-defined]
        finally:
            assert screen.backend is not None
            await screen.backend.cancel(op.uuid)  # type: ignore[attr-defined]
