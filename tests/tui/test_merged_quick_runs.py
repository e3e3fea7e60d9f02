"""A run started while the merged log is up joins it even if it ends before the next join tick (0.5 s). Seen in
the README's tour: after `m` on a `:parallel`, `:cat /app/note.txt` (10 ms) printed nowhere on screen: the
merged log joined only runs it caught running, so the stranger saw the old batch and not the line they asked
for (the title still said "the last batch and runs since")."""

from __future__ import annotations

from pathlib import Path

from contree_tui.tui.app import ContreeApp
from tests.tui.helpers import cancel_leftovers, loaded, run_in_bar, until


async def test_quick_runs_started_while_merged_join_it(tui_engine_dir: Path, tmp_path: Path) -> None:
    app = ContreeApp(state_dir=tui_engine_dir, folder=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        await cancel_leftovers(pilot, screen)
        panel = screen.log_panel
        panel.view.focus()
        await pilot.press("m")
        await until(pilot, lambda: panel.merged is not None, what="the merged log")
        merged = panel.merged
        assert merged is not None
        words = [f"quick-{n}" for n in range(5)]
        for word in words:
            await run_in_bar(pilot, f"echo {word}")
            command = f"echo {word}"
            await until(pilot, lambda c=command: any(op.command == c and not op.running  # type: ignore[misc]
                                                     for op in screen.table.operations.values()),
                        what=f"{command} to end")

        def merged_text() -> str:
            return "\n".join(merged.lines.texts)  # pulled from the buffers as the view flushes (50 ms)

        await until(pilot, lambda: all(word in merged_text() for word in words), timeout=10,
                    what="every quick run's line in the merged log")
