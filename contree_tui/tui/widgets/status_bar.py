"""The status bar: which Contree (and whether it answers), the folder's sync, the working snapshot, how many
runs are going. While the command bar searches its history, the search's prompt takes the bar's place.

The sync part appears once the folder uses sync (on at start, or `:sync` typed): "sync off", "syncing…",
"synced N files", or the error; a folder that never syncs is not told about it on every screen."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from contree_tui.client.progress import progress_bar
from contree_tui.client.reconnect import ConnectionState, LinkState
from contree_tui.client.sizes import human_size
from contree_tui.client.sync import SyncPhase, SyncStatus

SYNC_UNUSED = "unused"


class StatusBar(Static):
    COMPONENT_CLASSES = {"status-bar--ok", "status-bar--warning", "status-bar--error", "status-bar--label"}

    target: reactive[str] = reactive("")
    """"embedded", a profile name, or "environment"."""
    link: reactive[ConnectionState] = reactive(ConnectionState.connecting)
    working: reactive[str] = reactive("")
    running: reactive[int] = reactive(0)
    sync: reactive[SyncStatus | str | None] = reactive(SYNC_UNUSED)
    """The folder's sync: None when off, SYNC_UNUSED before the session touched it."""
    prompt: reactive[str] = reactive("")
    """The command bar's history search, shown instead of the rest while it lasts."""

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
            return [label, Text(f"error: {sync.reason}", part("status-bar--error"))]
        if sync.phase is SyncPhase.SYNCING:
            fraction = sync.fraction
            if fraction is None:
                return [label, Text("syncing…", part("status-bar--warning"))]
            # a first sync of 10,000 files takes seconds (minutes against a distant Contree): show how far
            return [label, Text(f"↑ {progress_bar(fraction, 10)} {sync.done_files:,}/{sync.files:,} files "
                                f"{human_size(sync.done_bytes)}/{human_size(sync.bytes)}", part("status-bar--warning"))]
        return [label, Text(f"synced {sync.files} file{'s' if sync.files != 1 else ''}", part("status-bar--ok"))]

    @property
    def sync_text(self) -> str:
        """The sync part as plain text ("" when not shown)."""
        return Text.assemble(*self._sync_part()).plain.strip()
