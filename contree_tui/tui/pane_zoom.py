"""`z`: the focused pane fills the screen, and back (`z` again, or esc: Textual's ESCAPE_TO_MINIMIZE).

Textual's Screen.maximized does the layout; this picks what to maximise: the pane the focus is in (the log
panel, not the log view inside it, so the operation's title, the "+N new" badge and the / prompt stay), and
keeps the focus on screen while a pane is maximised (a focused widget that is hidden takes keys invisibly)."""

from __future__ import annotations

from textual.screen import Screen
from textual.widget import Widget

PANES = ("tree", "operations", "log-panel", "detail-list", "detail-view", "detail-diff")
# what stays around a maximised pane (direct children of the screen): `:` must still open a visible bar
MAXIMIZED_VIEW = "Footer, #command-bar, #status, #connection-banner"


def pane_of(widget: Widget) -> Widget | None:
    """The pane `widget` is in (itself, or the nearest ancestor that is one)."""
    for node in (widget, *widget.ancestors):
        if isinstance(node, Widget) and node.id in PANES:
            return node
    return None


def toggle_maximized(screen: Screen[object]) -> Widget | None:
    """Maximise the focused pane, or restore the layout if one is maximised; the pane now maximised (or None)."""
    if screen.maximized is not None:
        screen.minimize()
        return None
    focused = screen.focused
    if focused is None:
        return None
    pane = pane_of(focused)
    if pane is None:
        return screen.maximized if screen.maximize(focused) else None
    screen.maximized = pane  # the pane itself may not be focusable (the log panel): no allow_maximize check
    return pane


def focus_in_maximized(screen: Screen[object]) -> bool:
    """Whether the focus is in the maximised pane (else in the command bar shown around it, or nothing is
    maximised): esc restores the layout only then, so esc in the command bar still leaves the bar."""
    pane, focused = screen.maximized, screen.focused
    return pane is not None and focused is not None and (focused is pane or pane in focused.ancestors)


def first_focusable(pane: Widget) -> Widget | None:
    if pane.focusable:
        return pane
    return next((widget for widget in pane.query("*") if isinstance(widget, Widget) and widget.focusable), None)


def keep_focus_visible(screen: Screen[object], focused: Widget, previous: Widget | None) -> None:
    """`focused` just got the focus while a pane is maximised. Inside the maximised view: nothing to do. Back
    from the command bar (the main screen then focuses the tree): into the maximised pane, so `:` from a
    maximised log keeps watching it. Anything else hidden (a palette jump to the tree): restore the layout."""
    pane = screen.maximized
    if pane is None or focused is pane or pane in focused.ancestors:
        return
    if pane_of(focused) is None:
        return  # the command bar, the status line: shown around the pane
    if previous is not None and previous.is_attached and pane_of(previous) is None and previous.screen is screen:
        target = first_focusable(pane)
        if target is not None:
            target.focus()
            return
    screen.minimize()
