"""The working position: the snapshot the next command runs on, one per local project folder and target.

It moves like an editor's undo history over the image tree:

- a run that made a new image moves it there and forgets the redo stack (a new branch, like typing after
  an undo); a run that changed nothing, failed, or was disposable leaves it where it was;
- `rollback` moves to the parent and pushes where it was onto the redo stack;
- `forward` pops the redo stack: back down to the child you came from;
- `jump` (the TUI's "go to this node", the CLI's `use`) moves anywhere; when the target is an ancestor of
  the current image, the way back down is kept on the redo stack, so `forward` retraces it.

Every move, and every run, is appended to a history (the TUI's command log), kept with the position in
`$XDG_CACHE_HOME/contree-tui/positions.sqlite`, keyed by the folder's absolute path and the target's cache
key (a wiped engine or another account starts afresh). Changes are transactions (BEGIN IMMEDIATE), so the
CLI and the TUI can move the same folder's position without losing a step.

One truth for every client: a client that shows the position watches it (`WorkingPosition.poll`, one
`PRAGMA data_version` per call, ~20 µs measured, re-reading the row and the new history entries only when
another connection committed), and follows the other clients' moves. A run records where it started (`if_at`): if
someone else moved the position while it ran, the run does NOT move it to its result, since that would make a
child of a snapshot the position had already left look like the next step (a silent fork; `history` would show
`X -> result` for a result not made from X). The run is still recorded, as a run that left the position where
the other client put it ("at X"), and its result stays in the image tree as a branch of the snapshot it ran on;
the client says so (the TUI's toast), and the user may go there (a jump).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contree_tui.client.observable import Observable
from contree_tui.client.sync_cache import cache_root

SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (
    folder TEXT NOT NULL, target TEXT NOT NULL,
    image TEXT,                        -- the working snapshot (NULL: not chosen yet)
    redo TEXT NOT NULL DEFAULT '[]',   -- JSON: images `forward` visits, next first
    updated_at REAL NOT NULL,
    PRIMARY KEY (folder, target)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    folder TEXT NOT NULL, target TEXT NOT NULL, at REAL NOT NULL,
    action TEXT NOT NULL,              -- set | jump | run | rollback | forward
    image TEXT,                        -- the position after the action
    previous TEXT,                     -- the position before it
    operation TEXT,                    -- a run's operation
    note TEXT NOT NULL DEFAULT '',     -- a run's command, a run's outcome, a jump's reference
    exit_code INTEGER
);
CREATE INDEX IF NOT EXISTS history_folder ON history(folder, target, id);
CREATE TABLE IF NOT EXISTS folder_sync (
    folder TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL,
    destination TEXT NOT NULL,
    excludes TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;
"""


class PositionError(Exception):
    """A move that cannot be made; the message says why, for the user."""


@dataclass(frozen=True)
class Position:
    folder: str
    target: str
    image: str | None
    redo: tuple[str, ...] = ()
    updated_at: float = 0.0


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    at: datetime
    action: str
    image: str | None
    previous: str | None
    operation: str | None = None
    note: str = ""
    exit_code: int | None = None

    @property
    def moved(self) -> bool:
        return self.image != self.previous

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "action": self.action, "image": self.image,
                "previous": self.previous, "operation": self.operation, "note": self.note,
                "exit_code": self.exit_code}


@dataclass(frozen=True)
class SyncSettings:
    enabled: bool = False
    destination: str = "/app"
    excludes: tuple[str, ...] = ()


def positions_path() -> Path:
    return cache_root() / "positions.sqlite"


def folder_key(folder: str | Path) -> str:
    return os.path.abspath(os.path.expanduser(str(folder)))


class PositionStore:
    """The sqlite file behind every folder's position. Thread-safe (one lock); cheap enough to call from the
    event loop (one row per call)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else positions_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get(self, folder: str, target: str) -> Position:
        with self._lock:
            return self._read(self._db, folder, target)

    @staticmethod
    def _read(db: sqlite3.Connection, folder: str, target: str) -> Position:
        row = db.execute("SELECT image, redo, updated_at FROM positions WHERE folder=? AND target=?",
                         (folder, target)).fetchone()
        if row is None:
            return Position(folder, target, None)
        return Position(folder, target, row[0], tuple(json.loads(row[1])), row[2])

    def move(self, folder: str, target: str, decide: Callable[[Position], tuple[str | None, Sequence[str]] | None],
             *, action: str, operation: str | None = None, note: str = "",
             exit_code: int | None = None) -> tuple[Position, HistoryEntry]:
        """Read the position, let `decide(position)` return the new (image, redo) (None: stay put, history is
        still written), write both and a history entry, all in one transaction."""
        with self._transaction() as db:
            before = self._read(db, folder, target)
            decided = decide(before)
            image, redo = (before.image, before.redo) if decided is None else (decided[0], tuple(decided[1]))
            now = time.time()
            db.execute("INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?, ?)",
                       (folder, target, image, json.dumps(list(redo)), now))
            cursor = db.execute(
                "INSERT INTO history(folder, target, at, action, image, previous, operation, note, exit_code)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (folder, target, now, action, image, before.image, operation, note, exit_code))
            entry = HistoryEntry(int(cursor.lastrowid or 0), datetime.fromtimestamp(now, UTC), action, image,
                                 before.image, operation, note, exit_code)
            return Position(folder, target, image, tuple(redo), now), entry

    def data_version(self) -> int:
        """Changes when another connection (another process, another store) commits to the file; not on this
        connection's own commits. A few microseconds: no file read when nothing changed."""
        with self._lock:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def history_after(self, folder: str, target: str, after: int) -> list[HistoryEntry]:
        """Entries newer than id `after`, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, at, action, image, previous, operation, note, exit_code FROM history"
                " WHERE folder=? AND target=? AND id>? ORDER BY id", (folder, target, after)).fetchall()
        return [HistoryEntry(r[0], datetime.fromtimestamp(r[1], UTC), *r[2:]) for r in rows]

    def last_move(self, folder: str, target: str) -> HistoryEntry | None:
        """The newest entry that moved the position (its image differs from the one before)."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, at, action, image, previous, operation, note, exit_code FROM history"
                " WHERE folder=? AND target=? AND image IS NOT previous ORDER BY id DESC LIMIT 1",
                (folder, target)).fetchone()
        return None if row is None else HistoryEntry(row[0], datetime.fromtimestamp(row[1], UTC), *row[2:])

    def last_history_id(self, folder: str, target: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(id) FROM history WHERE folder=? AND target=?",
                                   (folder, target)).fetchone()
        return int(row[0] or 0)

    def history(self, folder: str, target: str, limit: int | None = None) -> list[HistoryEntry]:
        """Oldest first; with `limit`, the latest `limit` entries."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, at, action, image, previous, operation, note, exit_code FROM history"
                " WHERE folder=? AND target=? ORDER BY id DESC LIMIT ?",
                (folder, target, -1 if limit is None else limit)).fetchall()
        return [HistoryEntry(r[0], datetime.fromtimestamp(r[1], UTC), *r[2:]) for r in reversed(rows)]

    def referenced_images(self, target: str) -> dict[str, str]:
        """Every image some folder's position, redo stack or history names on `target`, with the first folder
        found naming it (prune keeps these: a rollback, a forward or the command log may lead back to them)."""
        found: dict[str, str] = {}
        with self._lock:
            positions = self._db.execute("SELECT folder, image, redo FROM positions WHERE target=?",
                                         (target,)).fetchall()
            history = self._db.execute("SELECT folder, image, previous FROM history WHERE target=?",
                                       (target,)).fetchall()
        for folder, image, redo in positions:
            for uuid in (image, *json.loads(redo)):
                if uuid:
                    found.setdefault(uuid, folder)
        for folder, image, previous in history:
            for uuid in (image, previous):
                if uuid:
                    found.setdefault(uuid, folder)
        return found

    def sync_settings(self, folder: str) -> SyncSettings:
        with self._lock:
            row = self._db.execute("SELECT enabled, destination, excludes FROM folder_sync WHERE folder=?",
                                   (folder,)).fetchone()
        if row is None:
            return SyncSettings()
        return SyncSettings(bool(row[0]), row[1], tuple(json.loads(row[2])))

    def save_sync_settings(self, folder: str, settings: SyncSettings) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO folder_sync VALUES (?, ?, ?, ?)",
                       (folder, int(settings.enabled), settings.destination, json.dumps(list(settings.excludes))))


class WorkingPosition:
    """One folder's position on one target. `current` is observable for a UI."""

    def __init__(self, folder: str | Path, target: str, store: PositionStore | None = None) -> None:
        self.folder = folder_key(folder)
        self.target = target
        self.store = store if store is not None else PositionStore()
        self.current: Observable[Position] = Observable(self.store.get(self.folder, self.target))
        self._version = self.store.data_version()
        self._seen = self.store.last_history_id(self.folder, self.target)  # history entries already known
        self._own: set[int] = set()  # entries this object wrote (not news to its own client)

    @property
    def image(self) -> str | None:
        return self.reload().image

    def reload(self) -> Position:
        """Re-read it (another process may have moved it)."""
        position = self.store.get(self.folder, self.target)
        self.current.set(position)
        return position

    def poll(self) -> list[HistoryEntry] | None:
        """What other clients did since the last poll: None when nobody else wrote to the file (the cheap,
        usual answer), else their history entries for this folder, oldest first (maybe none: another
        folder's move), with `current` re-read."""
        version = self.store.data_version()
        if version == self._version:
            return None
        self._version = version
        entries = self.store.history_after(self.folder, self.target, self._seen)
        if entries:
            self._seen = entries[-1].id
        self.reload()
        return [e for e in entries if e.id not in self._own]

    def moved_by_another(self) -> HistoryEntry | None:
        """The entry that last moved the position, if another client wrote it (None: this object did, or
        nothing ever moved it)."""
        last = self.store.last_move(self.folder, self.target)
        return last if last is not None and last.id not in self._own else None

    def _move(self, decide: Callable[[Position], tuple[str | None, Sequence[str]] | None], **entry: Any
              ) -> HistoryEntry:
        position, recorded = self.store.move(self.folder, self.target, decide, **entry)
        self._own.add(recorded.id)
        self.current.set(position)
        return recorded

    def set(self, image: str, *, note: str = "") -> HistoryEntry:
        """Start from `image` (the redo stack is dropped)."""
        return self._move(lambda _p: (image, ()), action="set", note=note)

    def jump(self, image: str, *, ancestors: Callable[[str], Sequence[str]], note: str = "") -> HistoryEntry:
        """Go to `image`; if it is an ancestor of where we are, keep the way back down for `forward`.
        `ancestors(uuid)` gives an image's ancestors, nearest first (LineageTree.ancestors)."""

        def decide(p: Position) -> tuple[str, Sequence[str]]:
            if p.image is None or image == p.image:
                return image, p.redo if image == p.image else ()
            chain = list(ancestors(p.image))
            if image not in chain:
                return image, ()
            below = chain[:chain.index(image)]  # nearest first: the child of `image` is last
            return image, (*reversed(below), p.image, *p.redo)

        return self._move(decide, action="jump", note=note)

    def record_run(self, source: str, result: str | None, *, operation: str, command: str,
                   exit_code: int | None = None, moved: bool = True, if_at: str | None = None) -> HistoryEntry:
        """After a run on `source`: move to `result` if it is a new place (`moved=False` for a disposable or
        failed run, which only adds the history entry). `if_at`: where the position was when the run started;
        if another client moved it since, it stays where that client put it (module docstring)."""

        def decide(p: Position) -> tuple[str, Sequence[str]] | None:
            if not moved or result is None or result == p.image:
                return None
            if if_at is not None and p.image != if_at:
                return None  # moved by someone else meanwhile: no silent fork
            return result, ()

        return self._move(decide, action="run", operation=operation, note=command, exit_code=exit_code)

    def rollback(self, parent_of: Callable[[str], str | None], steps: int = 1) -> HistoryEntry:
        """Up `steps` parents (LineageTree.parent); the images left behind go onto the redo stack."""
        if steps < 1:
            raise PositionError("rollback: the number of steps must be at least 1")

        def decide(p: Position) -> tuple[str, Sequence[str]]:
            if p.image is None:
                raise PositionError("no working snapshot yet: nothing to roll back")
            image, redo = p.image, list(p.redo)
            for step in range(steps):
                parent = parent_of(image)
                if parent is None:
                    where = f"after {step} step{'s' if step != 1 else ''}" if step else "already"
                    raise PositionError(f"cannot roll back: {where} at {image[:8]}, an image with no parent "
                                        "(an import or a base image)")
                redo.insert(0, image)
                image = parent
            return image, redo

        return self._move(decide, action="rollback", note=str(steps))

    def forward(self, steps: int = 1) -> HistoryEntry:
        """Back down the way `rollback` (or a jump to an ancestor) came up."""
        if steps < 1:
            raise PositionError("forward: the number of steps must be at least 1")

        def decide(p: Position) -> tuple[str, Sequence[str]]:
            if len(p.redo) < steps:
                have = f"only {len(p.redo)} step{'s' if len(p.redo) != 1 else ''}" if p.redo else "nothing"
                raise PositionError(f"cannot go forward {steps}: {have} to go forward to (forward retraces "
                                    "rollbacks; a run or a jump elsewhere starts a new branch)")
            return p.redo[steps - 1], p.redo[steps:]

        return self._move(decide, action="forward", note=str(steps))

    def history(self, limit: int | None = None) -> list[HistoryEntry]:
        return self.store.history(self.folder, self.target, limit)


__all__ = ["HistoryEntry", "Position", "PositionError", "PositionStore", "SyncSettings", "WorkingPosition",
           "folder_key", "positions_path"]
