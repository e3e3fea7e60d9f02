"""The folder's sync as the main screen shows it: `:sync on|off`, the sync resumed at connect when the folder
left it on, the status bar kept current (where the sync is, what the last one sent and when), and the command
log (`@`) told about each sync that changed something and each new failure (a toast too: the bar has room for
the start of the reason only). A mixin of MainScreen, like command_verbs.py.

A failing sync is retried by the watcher with backoff (1 s … 30 s): the same reason again is not a new entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import work
from textual.message import Message

from contree_tui.client.sizes import human_size
from contree_tui.client.sync import SyncPhase, SyncStatus
from contree_tui.tui import verbs as v
from contree_tui.tui.command_log import LogEntry
from contree_tui.tui.sync_activity import SyncActivity


class SyncChanged(Message):
    """The folder's sync status changed (None: off)."""

    def __init__(self, status: SyncStatus | None) -> None:
        super().__init__()
        self.status = status

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SyncChanged)


class SyncSent(Message):
    """A sync changed the folder's state (an entry of the command log); never coalesced."""

    def __init__(self, activity: SyncActivity) -> None:
        super().__init__()
        self.activity = activity


class SyncFailed(Message):
    """A sync failed (an entry of the command log, a toast) for a reason not seen just before."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class SyncVerbs:
    """Mixed into MainScreen: uses its status bar, command log, position, clock and workers."""

    def _attach_sync(self, backend: Any) -> None:
        """On connect: watch the folder's sync and resume it if it was left on (here or by the CLI)."""
        sync = getattr(backend, "folder_sync", None)
        if sync is None:
            return
        sync.status.subscribe(self._sync_status_watcher())
        sync.activity.subscribe(self._sync_activity_watcher)
        self._resume_sync(sync)

    def _sync_activity_watcher(self, activity: SyncActivity | None) -> None:
        if activity is not None:
            self.post_message(SyncSent(activity))

    def _sync_status_watcher(self) -> Callable[[SyncStatus | None], None]:
        """Each status for the status bar; a failure whose reason differs from the last one for the log."""
        last_error: list[str | None] = [None]

        def on_status(status: SyncStatus | None) -> None:
            self.post_message(SyncChanged(status))
            if status is None or status.phase is SyncPhase.IDLE:
                last_error[0] = None
            elif status.phase is SyncPhase.ERROR and status.short_reason != last_error[0]:
                # by its core: the whole reason counts the files sent so far, which moves between retries
                last_error[0] = status.short_reason
                self.post_message(SyncFailed(status.reason))
        return on_status

    @work(group="sync", exit_on_error=False, description="resuming the folder's sync")
    async def _resume_sync(self, sync: Any) -> None:
        await sync.resume()

    def on_sync_changed(self, message: SyncChanged) -> None:
        self.status_bar.sync = message.status

    def on_sync_sent(self, message: SyncSent) -> None:
        activity = message.activity
        self.status_bar.sync_activity = activity
        result = f"{activity.summary()} in {activity.seconds:.2f} s"
        if activity.uploaded_bytes < activity.sent_bytes:  # contents the server held already cost nothing
            result += f" ({human_size(activity.uploaded_bytes)} uploaded, the server had the rest)"
        self.command_log.record(self.clock(), "sync", activity.paths(), result, snapshot=self.position.working)

    def on_sync_failed(self, message: SyncFailed) -> None:
        self.command_log.record(self.clock(), "sync", "folder sync", f"failed: {message.reason}", ok=False,
                                snapshot=self.position.working)
        self.notify(message.reason, title="sync failed (retrying)", severity="error", timeout=10)

    def _verb_sync(self, verb: v.Sync, entry: LogEntry) -> None:
        sync = getattr(self.backend, "folder_sync", None)
        if sync is None:
            self._done(entry, "this backend cannot sync a folder", ok=False)
            return
        self._carry_out(entry, f"cannot turn sync {'on' if verb.on else 'off'}", self._sync(sync, verb.on))

    async def _sync(self, sync: Any, on: bool) -> str:
        settings = await sync.turn(on)
        if on:
            return f"{sync.folder} → {settings.destination} in every following run, re-synced on change"
        return f"sync off: following runs get no files from {sync.folder}"


__all__ = ["SyncChanged", "SyncFailed", "SyncSent", "SyncVerbs"]
