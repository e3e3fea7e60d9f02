"""Keep a folder synced while the user edits it: watchfiles in the background, debounced, re-syncing only
the paths it reports (a touch or an identical rewrite re-hashes one file, uploads nothing and leaves the
state as it was).

- The watch starts before the first full sync, so an edit made while that sync runs is not lost.
- watchfiles batches events until they stop for `step_ms` (at most `debounce_ms` after the first); batches
  that arrive during a sync are merged into the next one.
- A failed sync (server gone, file unreadable) keeps its paths pending and is retried with backoff, and on
  the next change; the status says "error" with the reason meanwhile.
- A huge batch (more than FULL_SCAN_BATCH paths: a checkout, an unpacked archive) and a timer
  (`full_scan_every`, a guard against events the kernel dropped on queue overflow) fall back to a full scan,
  which the stat cache keeps cheap.

Status for the UI: `watcher.status` is the Syncer's: idle / syncing N files (bytes) / error with a reason;
`watcher.state` holds the latest DirectoryState.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable

from contree_client.exceptions import ContreeError
from watchfiles import Change, awatch

from contree_tui.client.connection import ConnectionProblem
from contree_tui.client.excludes import has_default_excluded_part
from contree_tui.client.observable import Observable
from contree_tui.client.sync import DirectoryState, Syncer, SyncError, SyncReport, SyncStatus

log = logging.getLogger("contree_tui.client.sync")

FULL_SCAN_BATCH = 1000
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)

Pending = set[str] | None  # paths to re-examine; None means everything


class DirectoryWatcher:
    """Watches `syncer.root` and keeps `syncer`'s state current. Use `async with`, or start()/stop()."""

    def __init__(self, syncer: Syncer, *, step_ms: int = 300, debounce_ms: int = 1600,
                 full_scan_every: float | None = 600.0, force_polling: bool | None = None,
                 on_report: Callable[[SyncReport], None] | None = None) -> None:
        self.syncer = syncer
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms
        self.full_scan_every = full_scan_every
        self.force_polling = force_polling
        self.on_report = on_report
        self.state: Observable[DirectoryState | None] = Observable(syncer.state)
        self.last_report: SyncReport | None = None
        self.ready = asyncio.Event()  # set once watching and the first sync is done (failed or not)
        self._stop = asyncio.Event()
        self._batches: asyncio.Queue[set[str]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def status(self) -> Observable[SyncStatus]:
        return self.syncer.status

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stop.clear()
            self.ready.clear()
            self._task = asyncio.create_task(self.run(), name=f"watch {self.syncer.root}")
        return self._task

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> DirectoryWatcher:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _keep(self, change: Change, path: str) -> bool:
        root = str(self.syncer.root)
        if not path.startswith(root + os.sep):
            return path == root
        # matched below the root only: a project living in ~/target/ must still be watched; the excluded
        # directory itself passes (its creation or removal is harmless to look at), its contents do not
        return not has_default_excluded_part(path[len(root) + 1:].replace(os.sep, "/"))

    async def _watch(self, watching: asyncio.Event) -> None:
        watching.set()  # the waiter resumes after this step, by which point awatch has set up its watches
        async for changes in awatch(self.syncer.root, watch_filter=self._keep, step=self.step_ms,
                                    debounce=self.debounce_ms, stop_event=self._stop, force_polling=self.force_polling,
                                    ignore_permission_denied=True):
            self._batches.put_nowait({path for _change, path in changes})

    async def run(self) -> None:
        """Watch until stopped (stop(), or cancellation)."""
        watching = asyncio.Event()
        producer = asyncio.create_task(self._watch(watching), name="watchfiles")
        try:
            await watching.wait()
            pending: Pending = None
            failures = 0
            last_full = time.monotonic()
            while not self._stop.is_set():
                if pending is None or pending:
                    if await self._sync(pending):
                        if pending is None:
                            last_full = time.monotonic()
                        pending, failures = set(), 0
                    else:
                        failures += 1
                    self.ready.set()
                timeout = RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1] if failures else None
                if self.full_scan_every is not None:
                    until_full = max(0.0, last_full + self.full_scan_every - time.monotonic())
                    timeout = until_full if timeout is None else min(timeout, until_full)
                batch = await self._next_batch(producer, timeout)
                if batch is None:  # timed out: retry, or the periodic full scan
                    if not failures:
                        pending = None
                    continue
                if pending is not None:
                    pending |= batch
                    if len(pending) > FULL_SCAN_BATCH:
                        pending = None
        finally:
            self._stop.set()
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer

    async def _next_batch(self, producer: asyncio.Task[None], timeout: float | None) -> set[str] | None:
        getter = asyncio.ensure_future(self._batches.get())
        try:
            done, _ = await asyncio.wait({getter, producer}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if getter in done:
            batch = getter.result()
            while not self._batches.empty():  # merge what piled up during the last sync
                batch |= self._batches.get_nowait()
            return batch
        if producer in done:
            producer.result()  # the watch itself failed (the folder went away…): raise it
            raise RuntimeError("the file watcher stopped")
        return None

    async def _sync(self, pending: Pending) -> bool:
        try:
            report = await self.syncer.sync(changed=pending)
        except (ConnectionProblem, ContreeError, SyncError, OSError, sqlite3.Error) as exc:
            # the status already says why; the loop retries. Anything else is a bug and ends the watch.
            log.warning("sync of %s failed: %s", self.syncer.root, exc)
            return False
        self.last_report = report
        self.state.set(report.state)
        if self.on_report is not None:
            self.on_report(report)
        return True
