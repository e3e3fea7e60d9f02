"""The lineage's memory: every image and operation a target has shown us, in one sqlite file per target
(`$XDG_CACHE_HOME/contree-tui/lineage/<connection cache key>.sqlite`), with the high-water marks that make the
next refresh incremental. WAL mode, so the CLI and the TUI can share it.

It is only a cache: deleting the file costs one full listing (a page per 1,000 images and operations).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from contree_client.models import OperationStatus

from contree_tui.client.records import EPOCH, ImageRecord, OperationRecord, parse_time
from contree_tui.client.sync_cache import cache_root, open_cache_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    uuid TEXT PRIMARY KEY,
    tags TEXT NOT NULL,              -- JSON array
    created_at TEXT NOT NULL,        -- ISO 8601, as the server sent it (normalised)
    created_ts REAL NOT NULL,        -- the same as a Unix time: the refresh's high-water mark
    operation_uuid TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS operations (
    uuid TEXT PRIMARY KEY,
    kind TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, created_ts REAL NOT NULL,
    error TEXT, duration REAL, image_uuid TEXT, result_image_uuid TEXT, image_size INTEGER,
    cpu_seconds REAL, memory INTEGER, exit_code INTEGER, signal INTEGER, timed_out INTEGER, command TEXT,
    detailed INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS marks (name TEXT PRIMARY KEY, value REAL NOT NULL) WITHOUT ROWID;
-- producing operations the server did not know when asked (expired, another namespace): not asked again
CREATE TABLE IF NOT EXISTS missing_operations (uuid TEXT PRIMARY KEY, checked_at REAL NOT NULL) WITHOUT ROWID;
"""

OPERATION_COLUMNS = ("uuid", "kind", "status", "created_at", "created_ts", "error", "duration", "image_uuid",
                     "result_image_uuid", "image_size", "cpu_seconds", "memory", "exit_code", "signal", "timed_out",
                     "command", "detailed")


# set once the rows cached before exec-form runs read whole (client/command_line.py) were marked to be read again
WHOLE_COMMANDS_MARK = "whole_exec_commands"


def lineage_cache_path(cache_key: str) -> Path:
    return cache_root() / "lineage" / f"{cache_key}.sqlite"


class LineageCache:
    """Methods may be called from worker threads, one at a time (a lock serialises them)."""

    def __init__(self, path: Path | None) -> None:
        """`path=None` keeps it in memory (every refresh of a new Lineage is then a full one)."""
        self.path = path
        self._lock = threading.Lock()
        self._db = open_cache_db(path)
        self._db.executescript(SCHEMA)
        self._reread_program_only_commands()

    @classmethod
    def for_key(cls, cache_key: str) -> LineageCache:
        return cls(lineage_cache_path(cache_key))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _reread_program_only_commands(self) -> None:
        """An exec-form run cached before it read whole holds its program alone (`echo`, not `echo hi`), and a
        detailed row is never read again: once per file, the one-word rows lose `detailed`, so the next detail
        read fetches them (one GET each, then cached for good)."""
        with self._lock, self._db:
            if self._db.execute("SELECT 1 FROM marks WHERE name=?", (WHOLE_COMMANDS_MARK,)).fetchone():
                return
            self._db.execute("UPDATE operations SET detailed=0 WHERE kind='instance' AND detailed=1"
                             " AND instr(trim(command), ' ')=0")
            self._db.execute("INSERT OR REPLACE INTO marks VALUES (?, ?)", (WHOLE_COMMANDS_MARK, time.time()))

    # -- marks ----------------------------------------------------------------------------------------

    def mark(self, name: str) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM marks WHERE name=?", (name,)).fetchone()
        return float(row[0]) if row else None

    def set_mark(self, name: str, value: float) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO marks VALUES (?, ?)", (name, value))

    # -- images ---------------------------------------------------------------------------------------

    def load_images(self) -> dict[str, ImageRecord]:
        with self._lock:
            rows = self._db.execute("SELECT uuid, tags, created_at, operation_uuid FROM images").fetchall()
        return {uuid: ImageRecord(uuid, tuple(json.loads(tags)), parse_time(created), op)
                for uuid, tags, created, op in rows}

    def save_images(self, images: Iterable[ImageRecord]) -> None:
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?)", map(_image_row, images))

    def replace_images(self, images: Iterable[ImageRecord]) -> None:
        """After a full listing: exactly these images (one transaction, so a reader never sees none)."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM images")
            self._db.executemany("INSERT INTO images VALUES (?, ?, ?, ?, ?)", map(_image_row, images))

    def replace_tags(self, tags: dict[str, tuple[str, ...]]) -> None:
        """The complete tag map: images not in it have no tag any more (tags are moved and removed)."""
        with self._lock, self._db:
            self._db.execute("UPDATE images SET tags='[]' WHERE tags != '[]'")
            self._db.executemany("UPDATE images SET tags=? WHERE uuid=?",
                                 ((json.dumps(list(t)), uuid) for uuid, t in tags.items()))

    def set_image_tags(self, uuid: str, tags: tuple[str, ...]) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE images SET tags=? WHERE uuid=?", (json.dumps(list(tags)), uuid))

    # -- operations -----------------------------------------------------------------------------------

    def load_operations(self) -> dict[str, OperationRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(OPERATION_COLUMNS)} FROM operations").fetchall()
        return {row[0]: _operation_from_row(row) for row in rows}

    def save_operations(self, operations: Iterable[OperationRecord]) -> None:
        marks = ", ".join("?" for _ in OPERATION_COLUMNS)
        with self._lock, self._db:
            self._db.executemany(f"INSERT OR REPLACE INTO operations VALUES ({marks})",
                                 (_operation_row(op) for op in operations))

    def forget_operations(self, uuids: Iterable[str]) -> None:
        with self._lock, self._db:
            self._db.executemany("DELETE FROM operations WHERE uuid=?", ((u,) for u in uuids))

    def missing_operations(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT uuid FROM missing_operations")}

    def add_missing_operations(self, uuids: Iterable[str]) -> None:
        now = time.time()
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO missing_operations VALUES (?, ?)", ((u, now) for u in uuids))


def _image_row(i: ImageRecord) -> tuple[object, ...]:
    return (i.uuid, json.dumps(list(i.tags)), i.created_at.isoformat(), i.created_at.timestamp(), i.operation_uuid)


def _operation_row(op: OperationRecord) -> tuple[object, ...]:
    return (op.uuid, op.kind, op.status.value, op.created_at.isoformat(), op.created_at.timestamp(), op.error,
            op.duration, op.image_uuid, op.result_image_uuid, op.image_size, op.cpu_seconds, op.memory, op.exit_code,
            op.signal, None if op.timed_out is None else int(op.timed_out), op.command, int(op.detailed))


def _operation_from_row(row: tuple[object, ...]) -> OperationRecord:
    (uuid, kind, status, created, _ts, error, duration, image, result, size, cpu, memory, code, signal, timed_out,
     command, detailed) = row
    return OperationRecord(
        uuid=str(uuid), kind=str(kind), status=OperationStatus(status), created_at=parse_time(created) or EPOCH,
        error=error, duration=duration, image_uuid=image, result_image_uuid=result, image_size=size,  # type: ignore[arg-type]
        cpu_seconds=cpu, memory=memory, exit_code=code, signal=signal,  # type: ignore[arg-type]
        timed_out=None if timed_out is None else bool(timed_out), command=command,  # type: ignore[arg-type]
        detailed=bool(detailed))
