"""The status bar: which Contree (and whether it answers), the working snapshot, how many runs are going."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from contree_tui.client.reconnect import ConnectionState, LinkState


class StatusBar(Static):
    COMPONENT_CLASSES = {"status-bar--ok", "status-bar--warning", "status-bar--error", "status-bar--label"}

    target: reactive[str] = reactive("")
    """"embedded", a profile name, or "environment"."""
    link: reactive[ConnectionState] = reactive(ConnectionState.connecting)
    working: reactive[str] = reactive("")
    running: reactive[int] = reactive(0)

    def render(self) -> Text:
        part = self.get_component_rich_style
        state = self.link.state
        if state is LinkState.CONNECTED:
            link = Text("● " + (self.target or "connected"), part("status-bar--ok"))
        elif state is LinkState.RECONNECTING:
            link = Text(f"◌ {self.target} reconnecting… (attempt {self.link.attempt})", part("status-bar--warning"))
        elif state is LinkState.FAILED:
            link = Text(f"✗ {self.target or 'Contree'} disconnected", part("status-bar--error"))
        else:
            link = Text(f"◌ {self.target or 'Contree'} connecting…", part("status-bar--warning"))
        return Text.assemble(
            link,
            ("  working ", part("status-bar--label")), self.working or "-",
            ("  running ", part("status-bar--label")), str(self.running),
        )
