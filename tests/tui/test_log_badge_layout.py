"""Pausing and resuming follow while runs stream must not lay the screen out again: a layout of the whole
screen costs about twice a repaint (bench/bench_tui_logs.py: a third of the frames of its key phase were
layouts, set off by the "+N new lines · G follows" badge appearing, vanishing and widening). The badge is
drawn by the log view over its own last row (log_badge.py), so a key or a growing count repaints one row."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual import messages
from textual.pilot import Pilot
from textual.screen import Screen

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.widgets.log_view import LogView
from tests.tui.helpers import loaded, run_in_bar, until

SIZE = (140, 40)
STREAM = "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); sleep 0.01; done"


async def test_pausing_and_resuming_follow_while_runs_stream_lays_nothing_out(
        tui_engine_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await run_in_bar(pilot, STREAM)
        await run_in_bar(pilot, STREAM.replace("line", "more"))
        view = screen.log_panel.view
        await until(pilot, lambda: view.line_count >= 100, what="two runs streaming into the view")
        view.focus()

        laid_out: list[str] = []
        on_layout = Screen._on_layout

        async def counting(self: Screen[object], message: messages.Layout) -> None:
            laid_out.append(repr(message.widget))
            await on_layout(self, message)

        monkeypatch.setattr(Screen, "_on_layout", counting)
        try:
            await _pausing_and_resuming(pilot, app, view, laid_out)
        finally:
            # The runs end before the app does: one left going is a running row in the next test's session
            # (test_log_branches' merged log and split view took them for branches of their own).
            monkeypatch.undo()
            running = [op.uuid for op in screen.table.operations.values() if op.running]
            for uuid in running:
                await screen.backend.cancel(uuid)  # type: ignore[union-attr]
            await until(pilot, lambda: not any(screen.table.operations[u].running for u in running), timeout=30,
                        what="the streaming runs cancelled")


async def _pausing_and_resuming(pilot: Pilot[None], app: ContreeApp, view: LogView, laid_out: list[str]) -> None:
    # the focus change's own layout (the footer's bindings) is done once 0.3 s pass without one (CI, loaded:
    # the footer was still being laid out after a fixed 0.3 s)
    for _ in range(30):
        laid_out.clear()
        await pilot.pause(0.3)
        if not laid_out:
            break
    assert laid_out == [], f"the screen never settled: {laid_out}"
    for _ in range(3):
        await pilot.press("k")
        await until(pilot, lambda: not view.following and view.new_lines >= 12,
                    what="follow paused, the badge's count past one digit")
        assert laid_out == [], "pausing follow and a growing count laid the screen out"
        assert any("new lines · G follows" in row for row in view.screen_text()), "the badge is drawn"
        assert "G&#160;follows" in app.export_screenshot(), "and reaches the screen (one row repainted)"
        await pilot.press("G")
        await until(pilot, lambda: view.following, what="follow resumed")
        await pilot.pause(0.1)
        assert laid_out == [], "resuming follow laid the screen out"
        assert not any("G follows" in row for row in view.screen_text()), "following: no badge"
        assert "G&#160;follows" not in app.export_screenshot()
