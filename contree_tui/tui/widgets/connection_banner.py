"""A warning strip docked at the top while Contree does not answer: what is wrong, the next attempt and when.
Hidden while connected, and before the first connection (the status bar and a toast say how that went: a
profile that does not exist is not an outage)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from contree_tui.client.reconnect import ConnectionState, LinkState


def format_delay(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 1 else f"{seconds:.0f} s"


class ConnectionBanner(Static):
    state: reactive[ConnectionState] = reactive(ConnectionState.connecting)
    target: reactive[str] = reactive("")
    """"embedded", a profile name, or "environment" ("" before the first connection)."""
    retry_every: reactive[float] = reactive(0.0)
    """Once the backoff gave up: how often the screen tries again (0: it does not)."""

    @property
    def showing(self) -> bool:
        return bool(self.target) and self.state.state in (LinkState.RECONNECTING, LinkState.FAILED)

    def watch_state(self) -> None:
        self._show()

    def watch_target(self) -> None:
        self._show()

    def _show(self) -> None:
        self.set_class(self.showing, "-visible")
        self.set_class(self.state.state is LinkState.FAILED, "-failed")

    def _what(self) -> str:
        if self.target == "embedded":
            return "engine"
        return f"Contree ({self.target})" if self.target else "Contree"

    def render(self) -> Text:
        state = self.state
        if state.state is LinkState.RECONNECTING:
            return Text(f"⚠ {self._what()} unreachable — reconnecting in {format_delay(state.delay)} "
                        f"(attempt {state.attempt})… {state.reason}")
        if state.state is LinkState.FAILED:
            again = f" — trying again every {format_delay(self.retry_every)}" if self.retry_every else ""
            return Text(f"✗ {self._what()} unreachable: {state.reason}{again}")
        return Text("")
