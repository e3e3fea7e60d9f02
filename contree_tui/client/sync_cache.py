"""The directory sync's memory: a stat cache (so unchanged files are not re-hashed) and the blobs a target
is known to hold (sha256 -> file uuid, so unchanged content costs no request at all).

One sqlite file per target (`$XDG_CACHE_HOME/contree-tui/sync/<connection cache key>.sqlite`): a file's
uuid only means something on the server that issued it, and the key changes with the engine's state or the
token's namespace. WAL mode, so the CLI and the TUI can sync at the same time.

A stat entry is trusted only while the file's (inode, size, mtime_ns, ctime_ns) are unchanged *and* it was
not "racily clean" when hashed: file times come from the kernel's coarse clock (one tick, ≤ 10 ms behind),
so a write in the same tick as our hash could leave every stat field equal while the bytes differ (git's
"racy git" problem). Entries whose times were within RACY_NS of the hash are re-hashed on the next scan,
once. ctime is kept alongside mtime because tools that restore mtimes (`touch -r`, `cp -p`, tar) cannot
restore ctime.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

RACY_NS = 10_000_000  # a kernel tick at HZ=100, the coarsest common clock for file times
REVALIDATE_AFTER = 24 * 3600.0  # re-probe a known blob after this long: servers expire uploads (~6 months)

SCHEMA = """
CREATE TABLE IF NOT EXISTS stat_cache (
    path TEXT PRIMARY KEY,      -- absolute local path
    ino INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    hashed_at_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs (
    sha256 TEXT PRIMARY KEY,
    uuid TEXT NOT NULL,
    size INTEGER NOT NULL,
    verified_at REAL NOT NULL   -- unix time the server last confirmed it has this content
) WITHOUT ROWID;
"""


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/contree-tui` (~/.cache/contree-tui)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "contree-tui"


def open_cache_db(path: Path | None) -> sqlite3.Connection:
    """A cache database for use from worker threads (callers serialise with a lock): WAL and
    synchronous=NORMAL, since a lost tail only costs a re-hash or a wider listing; `None` = in memory."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path) if path is not None else ":memory:", check_same_thread=False, timeout=30)
    if path is not None:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    return db


def cache_path_for(cache_key: str) -> Path:
    return cache_root() / "sync" / f"{cache_key}.sqlite"


class StatEntry(NamedTuple):
    """A tuple, not a dataclass: a re-sync builds and compares 10,000 of these, and a frozen dataclass's
    __init__ costs ~5x a tuple's."""

    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    sha256: str
    hashed_at_ns: int

    def matches(self, st: os.stat_result) -> bool:
        return (self.ino == st.st_ino and self.size == st.st_size and self.mtime_ns == st.st_mtime_ns
                and self.ctime_ns == st.st_ctime_ns)

    @property
    def racy(self) -> bool:
        return max(self.mtime_ns, self.ctime_ns) >= self.hashed_at_ns - RACY_NS


@dataclass(frozen=True, slots=True)
class Blob:
    uuid: str
    size: int
    verified_at: float

    @property
    def fresh(self) -> bool:
        return time.time() - self.verified_at < REVALIDATE_AFTER


class SyncCache:
    """The sqlite file behind a Syncer. Methods may be called from a worker thread, one at a time."""

    def __init__(self, path: Path | None) -> None:
        """`path=None` keeps everything in memory (a sync that remembers nothing between runs)."""
        self.path = path
        self._lock = threading.Lock()
        self._db = open_cache_db(path)
        self._db.executescript(SCHEMA)

    @classmethod
    def for_key(cls, cache_key: str) -> SyncCache:
        return cls(cache_path_for(cache_key))

    def load_stats(self, root: str) -> dict[str, StatEntry]:
        """Entries for files below `root` (absolute, no trailing slash), keyed by path relative to it."""
        prefix = root.rstrip("/") + "/"
        # '/' + 1 == '0': a range on the primary key instead of a LIKE scan
        upper = prefix[:-1] + "0"
        with self._lock:
            rows = self._db.execute(
                "SELECT path, ino, size, mtime_ns, ctime_ns, sha256, hashed_at_ns FROM stat_cache "
                "WHERE path >= ? AND path < ?", (prefix, upper)).fetchall()
        cut = len(prefix)
        return {row[0][cut:]: StatEntry(*row[1:]) for row in rows}

    def save_stats(self, root: str, upserts: dict[str, StatEntry], deletes: Iterable[str]) -> None:
        prefix = root.rstrip("/") + "/"
        with self._lock, self._db:  # one transaction: 10,000 rows in one fsync, not 10,000
            self._db.executemany("DELETE FROM stat_cache WHERE path = ?", ((prefix + rel,) for rel in deletes))
            self._db.executemany(
                "INSERT OR REPLACE INTO stat_cache VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((prefix + rel, e.ino, e.size, e.mtime_ns, e.ctime_ns, e.sha256, e.hashed_at_ns)
                 for rel, e in upserts.items()))

    def load_blobs(self) -> dict[str, Blob]:
        with self._lock:
            rows = self._db.execute("SELECT sha256, uuid, size, verified_at FROM blobs").fetchall()
        return {sha: Blob(uuid, size, verified) for sha, uuid, size, verified in rows}

    def save_blobs(self, blobs: dict[str, Blob]) -> None:
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?)",
                                 ((sha, b.uuid, b.size, b.verified_at) for sha, b in blobs.items()))

    def forget_blobs(self, shas: Iterable[str]) -> None:
        with self._lock, self._db:
            self._db.executemany("DELETE FROM blobs WHERE sha256 = ?", ((sha,) for sha in shas))

    def close(self) -> None:
        with self._lock:
            self._db.close()
