"""Keys typed ahead of a focus change go where the focus went, in order, as if typed there.

Textual forwards each key to the widget focused when the app reads it, but resolves a non-priority binding
(`:` on the main screen, `/` and `'` in the tree) only once the key has bubbled back up to the app. Keys
read in the same burst as `:` (`tmux send-keys ':echo abc'`, xdotool, a script, a terminal pasting without
bracketed paste: all the bytes in one read) were already forwarded to the tree when `:` opened the command
bar; they came back as the tree's and the screen's bindings (`c`: "nothing running to interrupt", `q`
quit) and never reached the bar. The app notes where it forwarded each key; a key that comes back to the
app after the focus moved on to a text input (the bar, a prompt) is forwarded to that input instead, and
never resolves a binding where it was first sent. Enter and backspace go the same way, so a burst's enter
submits the line it typed.

Three conditions keep it exact. An opener moves the focus at once (`focus_now`): `Widget.focus()` defers
the move by a message, and a key coming back before it would still find the tree focused. The terminal
hands a long burst over in several reads: keys read while earlier ones are still on their way back from
the tree would reach the bar first, so they are held and read again once those are in (tmux send-keys of
a 413-character `:echo … | wc -c` line, without this: 287 characters reached the bar, out of order; with
it: 413, and 1013 of 1013).
A prompt on a new screen has no focused input until that screen mounts it: keys coming back meanwhile are
held too. Held keys are read again in the order they were typed, as new keys (priority bindings apply).

Typing into a focused input is unchanged: those keys were forwarded to the input and come back from it
(enter, backspace, tab) to resolve its own bindings.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from textual import events
from textual.app import App
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input

# How many keys may be on their way back at once: one read of the terminal is forwarded whole before any key
# of it bubbles back, so this bounds a burst (a pasted line of 4000 characters without bracketed paste).
REMEMBERED = 4096
# A key forwarded to a pane bubbles back within milliseconds (no pane here keeps a key); one that has not
# after this was kept by some widget, and the keys held behind it are let go, in order, whatever is focused.
STRAY_AFTER = 2.0


@dataclass
class _Sent:
    order: int
    event: events.Key
    to: Widget
    screen: Screen[object]
    at: float


class TypeAhead:
    """Held by the app: `read` as it reads each key from the terminal (before forwarding it), `forwarded`
    once it did, `came_back` when a key has bubbled back up to it (before the bindings), `focus_landed` when
    focus lands anywhere."""

    def __init__(self, app: App[object]) -> None:
        self.app = app
        self._order = 0
        self._sent: OrderedDict[int, _Sent] = OrderedDict()  # keys forwarded to a pane, not back yet
        self._held: list[tuple[int, events.Key]] = []
        self._released: set[int] = set()  # held keys being read again
        self._timer: Timer | None = None

    def read(self, event: events.Key, focused: Widget | None) -> bool:
        """True: the key is held, the app must not forward it now."""
        if id(event) in self._released:
            self._released.discard(id(event))
            return False
        self._order += 1
        if self._held or (isinstance(focused, Input) and self._on_the_way()):
            self._hold(self._order, event)
            return True
        return False

    def forwarded(self, event: events.Key, to: Widget | None, screen: Screen[object]) -> None:
        """The app forwarded the key to `to` (not taken by a priority binding)."""
        if to is not None and not isinstance(to, Input):  # an input keeps what it types: it may not come back
            self._sent[id(event)] = _Sent(self._order, event, to, screen, time.monotonic())
            while len(self._sent) > REMEMBERED:
                self._sent.popitem(last=False)

    def came_back(self, event: events.Key, focused: Widget | None, screen: Screen[object]) -> bool:
        """True if the key was forwarded elsewhere (the caller must then not resolve its bindings)."""
        sent = self._sent.pop(id(event), None)
        if sent is None or sent.event is not event or sent.to is focused:
            return False  # typed into the focused widget: its bindings, as usual
        if self._held or (focused is None and screen is not sent.screen):  # a prompt screen, not focused yet
            self._hold(sent.order, events.Key(event.key, event.character))
        elif isinstance(focused, Input):
            # a new event, marked forwarded as the app marks what it sends, so the app does not forward it
            # again when it bubbles back up from the input (its bindings, enter's submit, resolve then)
            focused._forward_event(events.Key(event.key, event.character))
        else:
            return False  # focus moved to a pane or a button (tab, a dialog): its bindings, as Textual does
        event.stop()
        event.prevent_default()
        self._release()
        return True

    def focus_landed(self, widget: Widget) -> None:
        self._release()

    def _on_the_way(self) -> bool:
        """Is a key forwarded to a pane still to come back? (The oldest first: strays are dropped.)"""
        stray = time.monotonic() - STRAY_AFTER
        while self._sent:
            oldest = next(iter(self._sent.values()))
            if oldest.at > stray:
                return True
            self._sent.popitem(last=False)
        return False

    def _hold(self, order: int, event: events.Key) -> None:
        if not self._held:
            self._timer = self.app.set_timer(STRAY_AFTER, lambda: self._release(force=True))
        self._held.append((order, event))

    def _release(self, *, force: bool = False) -> None:
        """Read the held keys again, in order, once none is still on its way back and something is focused
        (`force`: the timer lets them go after STRAY_AFTER whatever is focused)."""
        if not self._held or (not force and (self.app.focused is None or self._on_the_way())):
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        held, self._held = sorted(self._held, key=lambda item: item[0]), []
        for _, event in held:
            self._released.add(id(event))
            self.app.post_message(event)


def focus_now(widget: Widget) -> None:
    """Focus `widget` before the app reads the next key (`Widget.focus()` only asks for it, by a message the
    app reads after the keys already queued): for an opener whose keys may come in one burst with more."""
    widget.screen.set_focus(widget)


def pasted_command(text: str) -> str | None:
    """A paste that starts with `:` on a pane (bracketed: the terminal marks it a paste) means what typing
    it means, the command bar with the line after `:`: the first line only and not run (a paste is never a
    command until enter is pressed, as in any shell). None: not a command line."""
    line = text.lstrip().splitlines()[0] if text.strip() else ""
    return line[1:] if line.startswith(":") else None
