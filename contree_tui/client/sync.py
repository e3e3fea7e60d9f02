"""Directory sync: a local folder becomes a directory state (path -> uploaded file uuid + mode) under a
destination in the sandbox (default /app), passed as the `files` map of every run.

Each sync: scan the folder (dir_scan: excludes, the symlink/special-file rule, stat cache so only changed
files are hashed), then make sure the server holds every content: a blob this target is known to hold costs
nothing; the others are sent by blob_upload (small files uploaded without a probe, larger ones probed first,
up to 32 requests in flight, many small files per request on the embedded engine), with progress in
`status`. Identical contents are uploaded once. The server's sha256 of an upload is checked against ours: a
file that changed in between is scanned again. Deletions and renames show in the next state (a renamed file
is a new path with a known blob: no upload). A sync that fails (an upload refused, the server gone) changes
no state: the run that wanted it does not start, and what was sent is remembered for the next sync.

A watcher passes the paths it saw change (`sync(changed=...)`) and only those are re-examined; a changed
.gitignore makes it a full scan.

Symlinks and special files (the full rule is in dir_scan's docstring): a symlink is followed only when it
resolves to a regular file inside the folder, and that file's content and mode are synced at the link's
path; links leading outside the folder, dangling, into an excluded path or to a directory are skipped with
a warning, as are sockets, FIFOs, devices and names that are not UTF-8. Empty directories are not synced.
Files land owned by root with their permission bits (`mode & 0o777`).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import os
import posixpath
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from contree_client.models import FileSpec

from contree_tui.client.blob_upload import BlobUploader, Transfer, TransferPolicy, UploadFailed, run_all
from contree_tui.client.connection import Connection
from contree_tui.client.dir_scan import DirScanner, LocalFile, ScanOutcome, Skipped
from contree_tui.client.excludes import Excludes
from contree_tui.client.observable import Observable
from contree_tui.client.sync_cache import REVALIDATE_AFTER, Blob, SyncCache

DEFAULT_DESTINATION = "/app"
MISMATCH_ROUNDS = 3
PROGRESS_EVERY = 0.1  # seconds between progress statuses: a TUI redraw per file would cost more than the file


class StateEntry(NamedTuple):
    uuid: str
    sha256: str
    mode: int
    size: int


@dataclass(frozen=True)
class DirectoryState:
    """What a run sees: entries keyed by path relative to the synced folder."""

    destination: str
    entries: Mapping[str, StateEntry]

    def __len__(self) -> int:
        return len(self.entries)

    def target_path(self, rel: str) -> str:
        return posixpath.join(self.destination, rel)

    def files(self) -> dict[str, FileSpec]:
        """The spawn request's `files` map: absolute sandbox path -> {uuid, mode} (a fresh dict each call,
        built once per state: every run sends it)."""
        return dict(self._files)

    @cached_property
    def _files(self) -> dict[str, FileSpec]:
        return {self.target_path(rel): FileSpec(uuid=e.uuid, mode=f"{e.mode:04o}")
                for rel, e in self.entries.items()}

    @cached_property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries.values())

    @cached_property
    def digest(self) -> str:
        """Equal digests, equal states: cheap to compare and to show."""
        h = hashlib.sha256(self.destination.encode())
        for rel in sorted(self.entries):
            e = self.entries[rel]
            h.update(f"\0{rel}\0{e.uuid}\0{e.mode:o}".encode())
        return h.hexdigest()


class SyncPhase(enum.Enum):
    IDLE = "idle"
    SYNCING = "syncing"
    ERROR = "error"


@dataclass(frozen=True)
class SyncStatus:
    """For the status bar: idle (with the state's size), syncing (files and bytes to send, and how many of
    them are done), or error with a reason."""

    phase: SyncPhase
    files: int = 0
    bytes: int = 0
    reason: str = ""
    done_files: int = 0  # while syncing: of `files`, sent or confirmed so far
    done_bytes: int = 0
    cause: str = ""  # an error's core (the server's answer, the file), short enough for a status bar

    @property
    def short_reason(self) -> str:
        return self.cause or self.reason

    @property
    def fraction(self) -> float | None:
        """Progress of the upload, 0..1, by bytes (by files when all are empty); None when not uploading."""
        if self.phase is not SyncPhase.SYNCING or not self.files:
            return None
        if self.bytes:
            return min(1.0, self.done_bytes / self.bytes)
        return min(1.0, self.done_files / self.files)

    def describe(self) -> str:
        if self.phase is SyncPhase.SYNCING:
            if not self.files:
                return "scanning"
            return (f"syncing {self.done_files:,}/{self.files:,} files "
                    f"({_human(self.done_bytes)} / {_human(self.bytes)})")
        if self.phase is SyncPhase.ERROR:
            return f"sync failed: {self.reason}"
        return f"synced {self.files} files ({_human(self.bytes)})"


@dataclass(frozen=True)
class SyncReport:
    state: DirectoryState
    full: bool  # the whole folder was walked
    scanned: int  # files examined
    hashed: int
    hashed_bytes: int
    probed: int  # GET/HEAD /files requests
    uploaded: int
    uploaded_bytes: int
    added: tuple[str, ...]
    changed: tuple[str, ...]  # content or mode
    removed: tuple[str, ...]
    skipped: tuple[Skipped, ...]
    seconds: float

    @property
    def changed_state(self) -> bool:
        return bool(self.added or self.changed or self.removed)


class SyncError(Exception):
    """`str()` says what failed and what it means for the runs; `cause`, when set, is just what failed."""

    def __init__(self, message: str, cause: str = "") -> None:
        super().__init__(message)
        self.cause = cause


class Syncer:
    """Keeps one folder synced to one connection's target. Not thread-safe; one sync at a time."""

    def __init__(self, connection: Connection, root: str | Path, destination: str = DEFAULT_DESTINATION, *,
                 excludes: Iterable[str] = (), gitignore: bool = True, cache: SyncCache | None = None,
                 stat_cache: bool = True, policy: TransferPolicy | None = None) -> None:
        self.connection = connection
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise SyncError(f"{root} is not a directory")
        if not destination.startswith("/"):
            raise SyncError(f"destination {destination!r} must be an absolute path")
        self.destination = posixpath.normpath(destination)
        self.excludes = Excludes(self.root, tuple(excludes), gitignore=gitignore)
        self.use_stat_cache = stat_cache
        self.cache = cache if cache is not None else (
            SyncCache.for_key(connection.cache_key) if stat_cache else SyncCache(None))
        self.policy = policy or TransferPolicy()
        self.status: Observable[SyncStatus] = Observable(SyncStatus(SyncPhase.IDLE))
        self.state: DirectoryState | None = None
        self._local: dict[str, LocalFile] = {}
        self._entries: dict[str, StateEntry] = {}
        self._gone: set[str] = set()
        self._scanner: DirScanner | None = None
        self._blobs: dict[str, Blob] = {}
        self._dirty_blobs: set[str] = set()  # learned since the last save
        self._lock = asyncio.Lock()

    def close(self) -> None:
        self.cache.close()

    def relative(self, path: str | Path) -> str | None:
        """`path` (absolute, or relative to the folder) as a state key; None if outside the folder."""
        full = os.path.normpath(os.path.join(self.root, path))
        if full == str(self.root):
            return ""
        prefix = str(self.root) + os.sep
        return full[len(prefix):].replace(os.sep, "/") if full.startswith(prefix) else None

    async def sync(self, changed: Iterable[str | Path] | None = None) -> SyncReport:
        """Bring the state up to date with the folder; `changed` limits the scan to these paths."""
        async with self._lock:
            self.status.set(SyncStatus(SyncPhase.SYNCING))
            try:
                report = await self._sync(changed)
            except Exception as exc:
                self.status.set(SyncStatus(SyncPhase.ERROR, reason=str(exc) or type(exc).__name__,
                                           cause=getattr(exc, "cause", "")))
                raise
            self.status.set(SyncStatus(SyncPhase.IDLE, len(report.state), report.state.total_bytes))
            return report

    async def _sync(self, changed: Iterable[str | Path] | None) -> SyncReport:
        started = time.perf_counter()
        if self._scanner is None:
            await asyncio.to_thread(self._load)
        scanner = self._scanner
        assert scanner is not None
        rels = None
        if changed is not None and self.state is not None:
            rels = {rel for rel in map(self.relative, changed) if rel is not None}
            if "" in rels:
                rels = None
        outcome = await asyncio.to_thread(self._scan, scanner, rels)
        transfer = Transfer()
        applied = False
        try:
            await self._transfer_all(scanner, outcome, transfer)
            added, updated, removed = self._apply(outcome)
            applied = True
        except UploadFailed as exc:
            raise SyncError(f"sync of {self.root} stopped: {exc}. Nothing changed: runs still get the files of "
                            f"the last sync; {transfer.files_done:,} of {transfer.files_total:,} files were "
                            "sent and are remembered, so the next sync sends only the rest", cause=str(exc)) from exc
        finally:  # what was hashed and uploaded stays known even when the sync failed half-way
            await asyncio.to_thread(self._persist, outcome, applied)
        if self.state is None or added or updated or removed:
            self.state = DirectoryState(self.destination, MappingProxyType(dict(self._entries)))
        return SyncReport(state=self.state, full=outcome.full, scanned=outcome.scanned, hashed=outcome.hashed,
                          hashed_bytes=outcome.hashed_bytes, probed=transfer.probed, uploaded=transfer.uploaded,
                          uploaded_bytes=transfer.uploaded_bytes, added=tuple(sorted(added)),
                          changed=tuple(sorted(updated)), removed=tuple(sorted(removed)),
                          skipped=tuple(outcome.skipped), seconds=time.perf_counter() - started)

    async def _transfer_all(self, scanner: DirScanner, outcome: ScanOutcome, transfer: Transfer) -> None:
        for round_ in range(MISMATCH_ROUNDS):
            await self._transfer(outcome.found, transfer)
            if not transfer.mismatched:
                return
            if round_ == MISMATCH_ROUNDS - 1:
                raise SyncError(f"{len(transfer.mismatched)} files kept changing while they were uploaded "
                                f"(e.g. {min(transfer.mismatched)}); try again")
            # changed (or went) while uploading: hash them again and send what they hold now
            if scanner.stats is not None:
                for rel in transfer.mismatched:
                    scanner.stats.pop(rel, None)
            again = await asyncio.to_thread(scanner.scan_paths, sorted(transfer.mismatched))
            transfer.mismatched.clear()
            outcome.hashed += again.hashed
            outcome.hashed_bytes += again.hashed_bytes
            outcome.skipped += again.skipped
            for rel in again.cleared:
                outcome.found.pop(rel, None)
            outcome.found.update(again.found)
            outcome.cleared |= again.cleared

    def _apply(self, outcome: ScanOutcome) -> tuple[list[str], list[str], list[str]]:
        """Fold a scan into the local view and the state entries; returns (added, changed, removed)."""
        local, entries, found = self._local, self._entries, outcome.found
        if outcome.full:
            gone = set(local.keys() - found.keys())
        else:
            gone = set()
            for cleared in outcome.cleared:
                if cleared in local:  # a file: nothing below it
                    if cleared not in found:
                        gone.add(cleared)
                    continue
                prefix = cleared + "/"  # maybe a directory: everything below it was re-scanned
                gone.update(rel for rel in local if rel.startswith(prefix) and rel not in found)
        for rel in gone:
            del local[rel]
            entries.pop(rel, None)
        added: list[str] = []
        updated: list[str] = []
        blobs = self._blobs
        for rel, f in found.items():
            old = entries.get(rel)
            uuid = blobs[f.sha256].uuid
            if old is not None and old[0] == uuid and local.get(rel) == f:  # the common case of a full scan
                continue
            entry = StateEntry(uuid, f.sha256, f.mode, f.size)
            if old is None:
                added.append(rel)
            elif old != entry:
                updated.append(rel)
            entries[rel] = entry
            local[rel] = f
        self._gone = gone
        return added, updated, sorted(gone)

    # -- local side (worker thread) -------------------------------------------------------------------

    def _load(self) -> None:
        stats = self.cache.load_stats(str(self.root)) if self.use_stat_cache else None
        self._blobs = self.cache.load_blobs()
        self._scanner = DirScanner(self.root, self.excludes, stats)

    def _scan(self, scanner: DirScanner, rels: set[str] | None) -> ScanOutcome:
        if rels is not None:
            outcome = scanner.scan_paths(rels)
            if not outcome.rules_changed:
                return outcome
        return scanner.scan_all()

    def _persist(self, outcome: ScanOutcome, applied: bool) -> None:
        scanner = self._scanner
        assert scanner is not None
        stats = scanner.stats
        if stats is not None:
            gone: set[str] = set(self._gone) if applied else set()
            if applied and outcome.full:  # entries of files that are excluded now, or were never synced
                gone |= stats.keys() - self._local.keys()
            for rel in gone:
                stats.pop(rel, None)
            upserts = {rel: e for rel, e in scanner.stat_upserts.items() if rel in stats}
            if upserts or gone:
                self.cache.save_stats(str(self.root), upserts, gone)
        scanner.stat_upserts.clear()
        self._gone = set()
        if self._dirty_blobs:
            self.cache.save_blobs({sha: self._blobs[sha] for sha in self._dirty_blobs if sha in self._blobs})
            self._dirty_blobs.clear()

    # -- server side --------------------------------------------------------------------------------

    async def _transfer(self, found: Mapping[str, LocalFile], transfer: Transfer) -> None:
        wanted: dict[str, LocalFile] = {}
        stale_before = time.time() - REVALIDATE_AFTER
        blobs = self._blobs
        for f in found.values():
            blob = blobs.get(f.sha256)
            if (blob is None or blob.verified_at < stale_before) and f.sha256 not in wanted:
                wanted[f.sha256] = f
        if not wanted:
            return
        shown = [0.0]

        def progress(t: Transfer) -> None:  # the first and the last status of a round always; between, throttled
            now = time.monotonic()
            if t.files_done in (0, t.files_total) or now - shown[0] >= PROGRESS_EVERY:
                shown[0] = now
                self.status.set(SyncStatus(SyncPhase.SYNCING, t.files_total, t.bytes_total,
                                           done_files=t.files_done, done_bytes=t.bytes_done))

        uploader = BlobUploader(self.connection, blobs, self._remember, policy=self.policy, on_progress=progress)
        await uploader.ensure(wanted.values(), transfer)

    def _remember(self, sha: str, blob: Blob) -> None:
        self._blobs[sha] = blob
        self._dirty_blobs.add(sha)

    async def revalidate(self) -> int:
        """Ask the server about every blob of the current state (HEAD); forget the ones it lost, so the next
        sync uploads them again. For a run refused because a file uuid is unknown. Returns how many were lost."""
        async with self._lock:
            return await self._revalidate()

    async def _revalidate(self) -> int:
        if self.state is None:
            return 0
        shas = {e.sha256 for e in self.state.entries.values()}
        limit = asyncio.Semaphore(self.policy.in_flight)
        lost: list[str] = []

        async def check(sha: str) -> None:
            async with limit:
                if not await self.connection.call(lambda: self.connection.client.check_file_exists(sha)):
                    lost.append(sha)

        await run_all(check(sha) for sha in shas)
        for sha in lost:
            self._blobs.pop(sha, None)
        await asyncio.to_thread(self.cache.forget_blobs, lost)
        if lost:
            self.state = None  # the next sync rebuilds it (a full scan: the stat cache keeps it cheap)
        return len(lost)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


__all__ = ["DEFAULT_DESTINATION", "DirectoryState", "StateEntry", "SyncError", "SyncPhase", "SyncReport",
           "SyncStatus", "Syncer"]
