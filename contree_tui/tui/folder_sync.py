"""The local folder's sync as the TUI runs it (`:sync on|off`): the on/off setting and destination are the
folder's, stored with its position and shared with the headless CLI (`contree-tui sync`, `run`); while on, a
client/watcher.py DirectoryWatcher keeps the directory state current as files change, and each run re-syncs
just before it spawns (cheap: the stat cache re-hashes nothing unchanged) so an edit made within the
watcher's debounce is still in the run. No Textual: the status bar watches `status` (where the sync is) and
`activity` (what the last sync that changed something sent, and when: the watcher's or a run's).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from contree_client.models import FileSpec

from contree_tui.client.connection import Connection
from contree_tui.client.observable import Observable
from contree_tui.client.position import PositionStore, SyncSettings, folder_key
from contree_tui.client.sync import DirectoryState, Syncer, SyncReport, SyncStatus
from contree_tui.client.watcher import DirectoryWatcher
from contree_tui.tui.sync_activity import SyncActivity


@dataclass(frozen=True)
class SyncedFiles:
    """What a run gets from the sync: the spawn's `files` map and where they land (the default cwd)."""

    files: dict[str, FileSpec]
    destination: str
    count: int


class FolderSync:
    def __init__(self, connection: Connection, store: PositionStore, folder: str | Path, *,
                 watch_step_ms: int = 300, watch_debounce_ms: int = 1600) -> None:
        self.connection = connection
        self.store = store
        self.folder = folder_key(folder)
        self.status: Observable[SyncStatus | None] = Observable(None)  # None: off
        self.activity: Observable[SyncActivity | None] = Observable(None)  # None: nothing sent yet
        self._syncer: Syncer | None = None
        self._watcher: DirectoryWatcher | None = None
        self._unsubscribe = lambda: None
        self._step_ms = watch_step_ms
        self._debounce_ms = watch_debounce_ms

    @property
    def settings(self) -> SyncSettings:
        return self.store.sync_settings(self.folder)

    @property
    def enabled(self) -> bool:
        return self._watcher is not None

    @property
    def state(self) -> DirectoryState | None:
        """The latest synced state (None while off or before the first sync)."""
        return self._syncer.state if self._syncer is not None else None

    async def resume(self) -> bool:
        """At connect: start watching if the folder's sync was left on (here or by the CLI)."""
        if self.settings.enabled:
            await self.turn(True)
            return True
        return False

    async def turn(self, on: bool) -> SyncSettings:
        """Switch the folder's sync on (first sync and watch in the background) or off; the setting is kept
        for the next session and the CLI. Raises SyncError when the folder cannot be synced."""
        current = self.settings
        await self._stop()
        if on:
            syncer = Syncer(self.connection, self.folder, current.destination, excludes=current.excludes)
            self._syncer = syncer
            self._unsubscribe = syncer.status.subscribe(self.status.set)
            self.status.set(syncer.status.value)
            self._watcher = DirectoryWatcher(syncer, step_ms=self._step_ms, debounce_ms=self._debounce_ms,
                                             on_report=self._reported)
            self._watcher.start()
        settings = SyncSettings(on, current.destination, current.excludes)
        self.store.save_sync_settings(self.folder, settings)
        return settings

    async def for_run(self) -> SyncedFiles | None:
        """None while off; else the folder synced now and the files a run attaches."""
        if self._syncer is None:
            return None
        report = await self._syncer.sync()
        self._reported(report)
        return SyncedFiles(report.state.files(), self._syncer.destination, len(report.state))

    def _reported(self, report: SyncReport) -> None:
        activity = SyncActivity.from_report(report)
        if activity is not None:
            self.activity.set(activity)

    async def _stop(self) -> None:
        watcher, self._watcher = self._watcher, None
        syncer, self._syncer = self._syncer, None
        self._unsubscribe()
        self._unsubscribe = lambda: None
        if watcher is not None:
            await watcher.stop()
        if syncer is not None:
            with contextlib.suppress(Exception):
                syncer.close()
        self.status.set(None)

    async def close(self) -> None:
        await self._stop()
