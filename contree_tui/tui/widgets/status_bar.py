"""The status bar: which Contree (and whether it answers), the folder's sync, the working snapshot, how many
runs are going. While the command bar searches its history, the search's prompt takes the bar's place.

The sync part appears once the folder uses sync (on at start, or `:sync` typed): "sync off"; a spinner while a
sync scans or uploads (with files and bytes done once it uploads); at rest what the last sync that changed
something sent and how long ago (`↑ 1 file, 12 B, 0.5 s ago`, the age ticking), or "synced N files" before
any; a failure in red with its reason. A folder that never syncs is not told about it on every screen."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from contree_tui.client.progress import progress_bar
from contree_tui.client.reconnect import ConnectionState, LinkState
from contree_tui.client.sizes import human_size
from contree_tui.client.sync import SyncPhase, SyncStatus
from contree_tui.tui.sync_activity import SyncActivity

SYNC_UNUSED = "unused"
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
ERROR_WIDTH = 90  # characters of a sync error's reason shown
TICK = 0.2  # seconds: the spinner's frame and the age's tenths; the bar redraws only when its text changed


class StatusBar(Static):
    COMPONENT_CLASSES = {"status-bar--ok", "status-bar--warning", "status-bar--error", "status-bar--label"}

    target: reactive[str] = reactive("")
    """"embedded", a profile name, or "environment"."""
    link: reactive[ConnectionState] = reactive(ConnectionState.connecting)
    working: reactive[str] = reactive("")
    running: reactive[int] = reactive(0)
    sync: reactive[SyncStatus | str | None] = reactive(SYNC_UNUSED)
    """The folder's sync: None when off, SYNC_UNUSED before the session touched it."""
    sync_activity: reactive[SyncActivity | None] = reactive(None)
    """What the last sync that changed something sent, and when."""
    prompt: reactive[str] = reactive("")
    """The command bar's history search, shown instead of the rest while it lasts."""

    def on_mount(self) -> None:
        self._frame = 0
        self._shown = ""
        self.set_interval(TICK, self._tick)

    def _tick(self) -> None:
        """The spinner turns and the age grows: redraw when the sync part reads differently (a rest with no
        sync shown costs nothing)."""
        sync = self.sync
        if not isinstance(sync, SyncStatus):
            return
        if sync.phase is SyncPhase.SYNCING:
            self._frame += 1
        text = self.sync_text
        if text != self._shown:
            self._shown = text
            self.refresh()

    def render(self) -> Text:
        part = self.get_component_rich_style
        if self.prompt:
            return Text(self.prompt, part("status-bar--warning"))
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
            link, *self._sync_part(),
            ("  working ", part("status-bar--label")), self.working or "-",
            ("  running ", part("status-bar--label")), str(self.running),
        )

    def _sync_part(self) -> list[Text | tuple[str, object] | str]:
        part = self.get_component_rich_style
        sync = self.sync
        if sync == SYNC_UNUSED:
            return []
        label = ("  sync ", part("status-bar--label"))
        if not isinstance(sync, SyncStatus):
            return [label, "off"]
        if sync.phase is SyncPhase.ERROR:
            # the whole reason is in the toast and `@`; the bar keeps room for the working snapshot after it
            reason = sync.short_reason
            if len(reason) > ERROR_WIDTH:
                reason = reason[:ERROR_WIDTH - 1] + "…"
            return [label, Text(f"✗ {reason}", part("status-bar--error"))]
        if sync.phase is SyncPhase.SYNCING:
            spinner = SPINNER[getattr(self, "_frame", 0) % len(SPINNER)]
            fraction = sync.fraction
            if fraction is None:
                return [label, Text(f"{spinner} syncing…", part("status-bar--warning"))]
            # a first sync of 10,000 files takes seconds (minutes against a distant Contree): show how far
            return [label, Text(f"{spinner} ↑ {progress_bar(fraction, 10)} {sync.done_files:,}/{sync.files:,} files "
                                f"{human_size(sync.done_bytes)}/{human_size(sync.bytes)}", part("status-bar--warning"))]
        activity = self.sync_activity
        if activity is not None:
            return [label, Text(f"{activity.summary()}, {activity.age()}", part("status-bar--ok"))]
        return [label, Text(f"synced {sync.files} file{'s' if sync.files != 1 else ''}", part("status-bar--ok"))]

    @property
    def sync_text(self) -> str:
        """The sync part as plain text ("" when not shown)."""
        return Text.assemble(*self._sync_part()).plain.strip()
