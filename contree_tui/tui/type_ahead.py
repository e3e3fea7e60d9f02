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

Two conditions keep it exact. An opener moves the focus at once (`focus_now`): `Widget.focus()` defers
the move by a message, and a key coming back before it would still find the tree focused. A prompt on a
new screen has no focused input until that screen mounts it: keys coming back meanwhile are held, and
forwarded in order to the first widget focused.

Typing into a focused input is unchanged: those keys were forwarded to the input and come back from it
(enter, backspace, tab) to resolve its own bindings.
"""

from __future__ import annotations

from collections import OrderedDict

from textual import events
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

# How many keys the app may have forwarded before the first of them comes back: one read of the terminal is
# forwarded whole before any key of it bubbles back, so this bounds the burst (a pasted line of 4000
# characters without bracketed paste). Keys an input keeps (the characters typed into it) never come back:
# the oldest are forgotten past this.
REMEMBERED = 4096


class TypeAhead:
    """Held by the app: `forwarded` as each key read is sent to a widget, `came_back` when it has bubbled
    back up (before the bindings), `focus_landed` when focus lands anywhere."""

    def __init__(self) -> None:
        self._sent: OrderedDict[int, tuple[events.Key, Widget | None, Screen[object]]] = OrderedDict()
        self._held: list[events.Key] = []

    def forwarded(self, event: events.Key, to: Widget | None, screen: Screen[object]) -> None:
        self._sent[id(event)] = (event, to, screen)  # the event is kept, so its id is not reused while remembered
        while len(self._sent) > REMEMBERED:
            self._sent.popitem(last=False)

    def came_back(self, event: events.Key, focused: Widget | None, screen: Screen[object]) -> bool:
        """True if the key was forwarded elsewhere (the caller must then not resolve its bindings)."""
        sent = self._sent.pop(id(event), None)
        if sent is None or sent[0] is not event:
            return False  # typed into the focused widget (or forwarded by us): its bindings as usual
        _, to, sent_on = sent
        if self._held:
            self._hold(event)  # behind the held ones, in order
        elif to is focused or to is None:
            return False
        elif isinstance(focused, Input):
            _type_into(focused, event)
        elif focused is None and screen is not sent_on:
            self._hold(event)  # a prompt screen opened, its input not focused yet
        else:
            return False  # focus moved to a pane or a button (tab, a dialog): its bindings, as Textual does
        event.stop()
        event.prevent_default()
        return True

    def focus_landed(self, widget: Widget) -> None:
        held, self._held = self._held, []
        for event in held:
            _type_into(widget, event)

    def _hold(self, event: events.Key) -> None:
        self._held.append(event)


def _type_into(widget: Widget, event: events.Key) -> None:
    # a new event, marked forwarded as the app marks what it sends, so the app does not forward it again when
    # it bubbles back up from `widget` (its bindings, enter's submit, resolve then)
    widget._forward_event(events.Key(event.key, event.character))


def focus_now(widget: Widget) -> None:
    """Focus `widget` before the app reads the next key (`Widget.focus()` only asks for it, by a message the
    app reads after the keys already queued): for an opener whose keys may come in one burst with more."""
    widget.screen.set_focus(widget)
