"""Keeping the link to Contree while the TUI runs. A mixin of MainScreen, kept apart so the screen's module
stays about layout, loading and following.

- A heartbeat (one whoami through the connection's reconnecting call) notices a dead server even when nothing
  streams: contree-client's event follow retries a broken stream on its own, quietly, so it would not say.
  For the embedded engine that same call starts the engine again (client/connection.py revives it).
- The banner shows the connection's state; every outage is a toast with its reason, giving up another one.
- Once back: operations the table still shows running and nobody follows are read again from their last
  event (the engine's recovery ended those it was running when it died: FAILED, "engine restarted"), so
  their state and log catch up with no line lost or repeated.
"""

from __future__ import annotations

from typing import Any

from contree_client.models import OperationStatus
from textual import work

from contree_tui.client.reconnect import ConnectionState, LinkState
from contree_tui.tui.backend_error import BackendError
from contree_tui.tui.model import Operation
from contree_tui.tui.widgets.connection_banner import ConnectionBanner

# A whoami over the engine's Unix socket costs well under a millisecond; a hosted Contree gets fewer.
HEARTBEAT_EMBEDDED = 2.0
HEARTBEAT_HOSTED = 10.0
DOWN = (LinkState.RECONNECTING, LinkState.FAILED)


class LinkWatch:
    """Mixed into MainScreen: uses its backend, table, buffers and `_follow`."""

    backend: Any
    _followed: set[str]

    def _init_link_watch(self) -> None:
        self._probing = False
        self._outage = False  # lost the link after having had it (the first connect is the status bar's)
        self._told_gave_up = False
        self._probe_error = ""

    @property
    def banner(self) -> ConnectionBanner:
        return self.query_one(ConnectionBanner)

    def _attach_link_watch(self, backend: Any) -> None:
        every = HEARTBEAT_EMBEDDED if backend.name == "embedded" else HEARTBEAT_HOSTED
        self.banner.target = backend.name
        self.banner.retry_every = every
        self.set_interval(every, self._heartbeat)

    def _link_changed(self, state: ConnectionState) -> None:
        self.banner.state = state
        notify = self.notify
        if state.state in DOWN and self.backend is not None:
            if not self._outage:
                self._outage = True
                notify(f"{state.reason}; reconnecting", title="connection lost", severity="warning", timeout=10)
            if state.state is LinkState.FAILED and not self._told_gave_up:
                self._told_gave_up = True
                notify(f"{state.reason} (the banner says when it tries again)", title="cannot reconnect",
                       severity="error", timeout=15)
        elif state.state is LinkState.CONNECTED and self._outage:
            self._outage = self._told_gave_up = False
            notify("the connection is back; following the running operations again", title="reconnected",
                   timeout=5)
            self.resume_operations()

    def _heartbeat(self) -> None:
        if self.backend is not None and not self._probing:
            self._probing = True
            self.probe_link()

    @work(group="link-probe", exit_on_error=False, description="checking the connection")
    async def probe_link(self) -> None:
        try:
            await self.backend.ping()
            self._probe_error = ""
        except BackendError as exc:
            # An unreachable server is the status's to say (banner, toasts above); anything else (a token
            # refused after a restart…) is a toast, once per distinct reason rather than every heartbeat.
            if self.backend.status.value.state not in DOWN and str(exc) != self._probe_error:
                self.notify(str(exc), title="connection check failed", severity="error")
            self._probe_error = str(exc)
        finally:
            self._probing = False

    def resume_operations(self) -> None:
        for op in list(self.table.operations.values()):
            if not op.status.is_terminal() and op.uuid not in self._followed:
                self._followed.add(op.uuid)  # now, not when the worker starts: no second follower
                self.resume_operation(op)

    @work(exit_on_error=False, description="reading the log after reconnecting")
    async def resume_operation(self, op: Operation) -> None:
        await self._follow(op)
        if op.status in (OperationStatus.FAILED, OperationStatus.CANCELLED):
            what = " ".join(op.command.split())[:40] or op.uuid[:8]
            self.notify(f"{what}: {op.error or op.status.value.lower()}",
                        title="import failed" if op.is_import else "run failed", severity="error")
