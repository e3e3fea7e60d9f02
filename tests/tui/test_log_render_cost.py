"""What drawing the log view costs per row, against a real engine's app: while 20 runs stream it is drawn 20
times a second (bench/bench_tui_logs.py), so a row must not pay for work that only a style change redoes.
`rich_style` walks every ancestor's background (0.1-0.4 ms a call): it was asked once per row drawn."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.dom import DOMNode

from contree_tui.tui.app import ContreeApp
from contree_tui.tui.model import OutputBuffer, Stream
from contree_tui.tui.widgets.log_view import LogView
from tests.tui.helpers import loaded


async def test_a_frame_of_the_log_asks_for_the_views_style_once_per_style_change(
        tui_engine_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = ContreeApp(state_dir=tui_engine_dir)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await loaded(pilot)
        buffer = OutputBuffer()
        buffer.feed(Stream.STDOUT, "".join(f"line {n}\n" for n in range(200)), time.time())
        screen.log_panel.show("hand-fed", buffer)
        view = screen.log_panel.view
        await pilot.pause()
        rows = view.scrollable_content_region.height
        assert rows > 10

        asked = []
        plain = DOMNode.rich_style.fget  # type: ignore[attr-defined]

        def counted(node: DOMNode):  # type: ignore[no-untyped-def]
            asked.append(node)
            return plain(node)

        monkeypatch.setattr(LogView, "rich_style", property(counted))
        view.screen_text()
        view.screen_text()
        assert len(asked) <= 1, f"{len(asked)} rich_style walks for {2 * rows} rows drawn"

        # ...and a style change is still drawn: the theme's background reaches the rows.
        before = next(iter(view.render_line(0))).style
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        await pilot.pause()
        after = next(iter(view.render_line(0))).style
        assert before is not None and after is not None and before.bgcolor != after.bgcolor
