"""`tab` / `shift+tab` on the main screen cycle the panes (tree, operations, log) and pass over the command
bar: tabbing from the log landed in the bar, where `tab` completes instead of moving on, so the next keys
(`j`, enter) ran as a shell command (`j exited 127`). `:` is the way into the bar. A mixin of MainScreen.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widget import Widget

from contree_tui.tui.widgets.command_bar import CommandBar


class PaneCycle(Screen[None]):
    """Mixed into MainScreen before Screen: Screen.focus_next/previous, the command bar skipped."""

    def focus_next(self, selector: str | type[Widget] = "*") -> Widget | None:  # type: ignore[override]
        widget = super().focus_next(selector)
        if isinstance(widget, CommandBar):
            widget = super().focus_next(selector)
        return widget

    def focus_previous(self, selector: str | type[Widget] = "*") -> Widget | None:  # type: ignore[override]
        widget = super().focus_previous(selector)
        if isinstance(widget, CommandBar):
            widget = super().focus_previous(selector)
        return widget


__all__ = ["PaneCycle"]
