"""Engine metadata in sqlite (WAL): images, tags, operations, events, uploaded files.

Layers live on disk (see layers.py); a row pointing at a layer is only written after the layer has been
renamed into place, so a crash can leave an unreferenced layer (swept on start) but never a row without one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contree_tui.engine.models import (
    ACTIVE_STATUSES,
    Event,
    Image,
    NotFound,
    Operation,
    OperationStatus,
    StoredFile,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    uuid TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    parent TEXT,
    operation_uuid TEXT,
    layers TEXT NOT NULL,          -- JSON list of layer ids, bottom first
    env TEXT NOT NULL DEFAULT '{}',
    workdir TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS images_created ON images(created_at);
CREATE TABLE IF NOT EXISTS tags (
    tag TEXT PRIMARY KEY,
    image_uuid TEXT NOT NULL REFERENCES images(uuid),
    tagged_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_uuid);
CREATE TABLE IF NOT EXISTS operations (
    uuid TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    image_uuid TEXT,
    result_image_uuid TEXT,
    result_tag TEXT,
    error TEXT,
    image_size INTEGER,
    consumed_cpu REAL,
    consumed_memory INTEGER,
    request TEXT NOT NULL,
    result TEXT
);
CREATE INDEX IF NOT EXISTS operations_created ON operations(created_at);
CREATE INDEX IF NOT EXISTS operations_status ON operations(status);
CREATE TABLE IF NOT EXISTS events (
    operation_uuid TEXT NOT NULL,
    id INTEGER NOT NULL,
    ts TEXT NOT NULL,
    spid INTEGER,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (operation_uuid, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (
    uuid TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS layer_digests (
    diff_id TEXT PRIMARY KEY,      -- sha256:<hex> of the layer's uncompressed tar (OCI's diff id)
    layer TEXT NOT NULL,           -- its directory under layers/
    size INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS layer_digests_layer ON layer_digests(layer);
CREATE TABLE IF NOT EXISTS image_sources (
    source_digest TEXT PRIMARY KEY, -- the manifest digest an image was imported from
    image_uuid TEXT NOT NULL REFERENCES images(uuid)
);
CREATE TABLE IF NOT EXISTS squashes (
    source TEXT PRIMARY KEY,       -- JSON list of the layer ids that were merged
    layer TEXT NOT NULL
);
"""


# Columns added after a state dir may have been created: (table, column, definition) for ALTER TABLE.
MIGRATIONS = (
    ("images", "user", "TEXT NOT NULL DEFAULT ''"),  # the image config's User (recorded, not applied)
    ("images", "config_workdir", "TEXT NOT NULL DEFAULT ''"),  # its WorkingDir (recorded, not applied)
)

SUMMARY_COLUMNS = ("uuid, kind, status, created_at, started_at, finished_at, image_uuid, result_image_uuid, "
                   "result_tag, error, image_size, consumed_cpu, consumed_memory")


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Store:
    def __init__(self, path: Path) -> None:
        # One connection, used from the engine's event-loop thread only.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        for table, column, definition in MIGRATIONS:
            present = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def close(self) -> None:
        self.db.close()

    # -- images -----------------------------------------------------------------------------------
    def add_image(self, image: Image, source_digest: str | None = None) -> None:
        """The image row, its tags (moved if another image held them) and, for an import, the digest it came
        from, in one transaction: a re-import finds the image whole or not at all."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute(
                "INSERT INTO images(uuid, created_at, parent, operation_uuid, layers, env, workdir, size, user,"
                " config_workdir) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (image.uuid, image.created_at, image.parent, image.operation_uuid, json.dumps(list(image.layers)),
                 json.dumps(image.env), image.workdir, image.size, image.user, image.config_workdir),
            )
            for tag in image.tags:
                self._set_tag(tag, image.uuid)
            if source_digest:
                self.db.execute("INSERT OR REPLACE INTO image_sources(source_digest, image_uuid) VALUES (?,?)",
                                (source_digest, image.uuid))

    def _image_from_row(self, row: sqlite3.Row) -> Image:
        tags = tuple(r[0] for r in self.db.execute(
            "SELECT tag FROM tags WHERE image_uuid=? ORDER BY tagged_at", (row["uuid"],)))
        return Image(uuid=row["uuid"], created_at=row["created_at"], layers=tuple(json.loads(row["layers"])),
                     parent=row["parent"], operation_uuid=row["operation_uuid"], tags=tags,
                     env=json.loads(row["env"]), workdir=row["workdir"], size=row["size"], user=row["user"],
                     config_workdir=row["config_workdir"])

    def find_image(self, uuid: str) -> Image | None:
        row = self.db.execute("SELECT * FROM images WHERE uuid=?", (uuid.lower(),)).fetchone()
        return self._image_from_row(row) if row else None

    def get_image(self, uuid: str) -> Image:
        image = self.find_image(uuid)
        if image is None:
            raise NotFound(f"image {uuid} not found")
        return image

    def image_by_tag(self, tag: str) -> Image:
        row = self.db.execute("SELECT image_uuid FROM tags WHERE tag=?", (tag,)).fetchone()
        if row is None:
            raise NotFound(f"no image tagged {tag!r}")
        return self.get_image(row[0])

    def list_images(self, *, limit: int = 100, offset: int = 0, tagged: bool = False, tag_prefix: str | None = None,
                    uuid: str | None = None, since: float | None = None, until: float | None = None,
                    roots: bool | None = None) -> list[Image]:
        """`roots`: True for root images only (imported, built in), False for images made by runs."""
        where, params = _created_between(since, until)
        if roots is not None:
            where.append("parent IS NULL" if roots else "parent IS NOT NULL")
        if tagged or tag_prefix is not None:
            where.append("uuid IN (SELECT image_uuid FROM tags WHERE tag LIKE ? ESCAPE '\\')")
            params.append(_like_prefix(tag_prefix or ""))
        if uuid:
            where.append("uuid=?")
            params.append(uuid.lower())
        sql = "SELECT * FROM images" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at, uuid LIMIT ? OFFSET ?"
        rows = self.db.execute(sql, (*params, limit, offset)).fetchall()
        return [self._image_from_row(r) for r in rows]

    def _set_tag(self, tag: str, image_uuid: str) -> None:
        self.db.execute("INSERT INTO tags(tag, image_uuid, tagged_at) VALUES (?,?,?) ON CONFLICT(tag) DO UPDATE"
                        " SET image_uuid=excluded.image_uuid, tagged_at=excluded.tagged_at",
                        (tag, image_uuid, time.time()))

    def set_tag(self, image_uuid: str, tag: str) -> Image:
        self.get_image(image_uuid)
        with self.db:
            self.db.execute("BEGIN")
            self._set_tag(tag, image_uuid)
        return self.get_image(image_uuid)

    def remove_tags(self, image_uuid: str, tag: str | None = None) -> None:
        self.get_image(image_uuid)
        if tag is None:
            self.db.execute("DELETE FROM tags WHERE image_uuid=?", (image_uuid,))
            return
        if self.db.execute("DELETE FROM tags WHERE image_uuid=? AND tag=?", (image_uuid, tag)).rowcount == 0:
            raise NotFound(f"image {image_uuid} has no tag {tag!r}")

    def referenced_layers(self) -> set[str]:
        layers: set[str] = set()
        for (raw,) in self.db.execute("SELECT layers FROM images"):
            layers.update(json.loads(raw))
        for (raw,) in self.db.execute("SELECT layer FROM squashes"):
            layers.add(raw)
        return layers

    def all_images(self) -> list[Image]:
        return [self._image_from_row(r) for r in self.db.execute("SELECT * FROM images ORDER BY created_at, uuid")]

    def squash_cache(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT layer FROM squashes")}

    def delete_image(self, uuid: str, keep: set[str] | frozenset[str] = frozenset()) -> set[str]:
        """Delete an image's row and, in the same transaction, its tags and import source, the squash cache
        entries no image uses any more, and the diff ids of the layers nothing references after it; returns
        those layers (their dirs are the caller's to remove: a crash before that leaves them unreferenced, and
        the next start sweeps them, see Engine._sweep_disk). Layers in `keep` (held by an import in progress,
        which will list them) are left, with their diff ids."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute("SELECT layers FROM images WHERE uuid=?", (uuid,)).fetchone()
            if row is None:
                raise NotFound(f"image {uuid} not found")
            candidates = set(json.loads(row[0]))
            self.db.execute("DELETE FROM tags WHERE image_uuid=?", (uuid,))
            self.db.execute("DELETE FROM image_sources WHERE image_uuid=?", (uuid,))
            self.db.execute("DELETE FROM images WHERE uuid=?", (uuid,))
            in_images: set[str] = set()
            for (raw,) in self.db.execute("SELECT layers FROM images"):
                in_images.update(json.loads(raw))
            # A squash no image uses is only a cache for a sibling that may never come: prune frees it (a later
            # sibling merges again: hard links, ~1 ms per 100 files).
            for source, layer in self.db.execute("SELECT source, layer FROM squashes").fetchall():
                if layer not in in_images:
                    self.db.execute("DELETE FROM squashes WHERE source=?", (source,))
                    candidates.add(layer)
            orphans = candidates - in_images - set(keep)
            self.db.executemany("DELETE FROM layer_digests WHERE layer=?", [(x,) for x in orphans])
            return orphans

    # -- content-addressed layers and imported sources ---------------------------------------------------
    def layer_by_diff_id(self, diff_id: str) -> tuple[str, int] | None:
        """(layer id, bytes) of the layer stored for an OCI diff id."""
        row = self.db.execute("SELECT layer, size FROM layer_digests WHERE diff_id=?", (diff_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def record_layer_digest(self, diff_id: str, layer: str, size: int) -> tuple[str, int]:
        """Record `layer` for `diff_id` unless one is recorded already; returns the one that is."""
        self.db.execute("INSERT OR IGNORE INTO layer_digests(diff_id, layer, size) VALUES (?,?,?)",
                        (diff_id, layer, size))
        found = self.layer_by_diff_id(diff_id)
        assert found is not None
        return found

    def forget_layer_digests(self, layers: Iterable[str]) -> None:
        self.db.executemany("DELETE FROM layer_digests WHERE layer=?", [(x,) for x in layers])

    def image_for_source(self, source_digest: str) -> Image | None:
        row = self.db.execute("SELECT image_uuid FROM image_sources WHERE source_digest=?",
                              (source_digest,)).fetchone()
        return self.find_image(row[0]) if row else None

    def squashed_layer(self, source: Iterable[str]) -> str | None:
        row = self.db.execute("SELECT layer FROM squashes WHERE source=?", (json.dumps(list(source)),)).fetchone()
        return row[0] if row else None

    def record_squash(self, source: Iterable[str], layer: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO squashes(source, layer) VALUES (?,?)",
                        (json.dumps(list(source)), layer))

    # -- operations -------------------------------------------------------------------------------
    def add_operation(self, op: Operation) -> None:
        self.db.execute(
            "INSERT INTO operations(uuid, kind, status, created_at, image_uuid, request) VALUES (?,?,?,?,?,?)",
            (op.uuid, op.kind, op.status.value, op.created_at, op.image_uuid, json.dumps(op.request)),
        )

    def update_operation(self, uuid: str, **fields: Any) -> None:
        self._update_operation(uuid, fields)

    def _update_operation(self, uuid: str, fields: dict[str, Any]) -> None:
        if "status" in fields and isinstance(fields["status"], OperationStatus):
            fields["status"] = fields["status"].value
        if "result" in fields and fields["result"] is not None:
            fields["result"] = json.dumps(fields["result"])
        assignments = ", ".join(f"{name}=?" for name in fields)
        self.db.execute(f"UPDATE operations SET {assignments} WHERE uuid=?", (*fields.values(), uuid))

    def _operation_from_row(self, row: sqlite3.Row) -> Operation:
        return Operation(
            uuid=row["uuid"], kind=row["kind"], status=OperationStatus(row["status"]), created_at=row["created_at"],
            image_uuid=row["image_uuid"], request=json.loads(row["request"]), started_at=row["started_at"],
            finished_at=row["finished_at"], error=row["error"], result_image_uuid=row["result_image_uuid"],
            result_tag=row["result_tag"], image_size=row["image_size"], consumed_cpu=row["consumed_cpu"],
            consumed_memory=row["consumed_memory"], result=json.loads(row["result"]) if row["result"] else None,
        )

    def get_operation(self, uuid: str) -> Operation:
        row = self.db.execute("SELECT * FROM operations WHERE uuid=?", (uuid.lower(),)).fetchone()
        if row is None:
            raise NotFound(f"operation {uuid} not found")
        return self._operation_from_row(row)

    def list_operations(self, *, limit: int = 100, offset: int = 0, status: OperationStatus | None = None,
                        kind: str | None = None, since: float | None = None,
                        until: float | None = None) -> list[Operation]:
        where, params = _created_between(since, until)
        for column, value in (("status", status.value if status else None), ("kind", kind)):
            if value is not None:
                where.append(f"{column}=?")
                params.append(value)
        # Summaries only: the request and result blobs are neither read nor parsed (a list of 100 operations
        # with big requests was 70x slower when each row's request JSON was loaded).
        sql = f"SELECT {SUMMARY_COLUMNS}, '{{}}' AS request, NULL AS result FROM operations"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created_at DESC, uuid LIMIT ? OFFSET ?"
        return [self._operation_from_row(r) for r in self.db.execute(sql, (*params, limit, offset))]

    def active_operations(self) -> list[Operation]:
        marks = ",".join("?" for _ in ACTIVE_STATUSES)
        rows = self.db.execute(f"SELECT * FROM operations WHERE status IN ({marks})",
                               [s.value for s in ACTIVE_STATUSES])
        return [self._operation_from_row(r) for r in rows]

    # -- events -----------------------------------------------------------------------------------
    def add_events(self, operation_uuid: str, events: list[Event]) -> None:
        self.add_events_batch([(operation_uuid, events)])

    def add_events_batch(self, batch: list[tuple[str, list[Event]]],
                         updates: Iterable[tuple[str, dict[str, Any]]] = ()) -> None:
        """Events of several operations, and updates of operation rows, in one transaction."""
        with self.db:
            self.db.execute("BEGIN")
            for uuid, fields in updates:
                self._update_operation(uuid, fields)
            self.db.executemany(
                "INSERT INTO events(operation_uuid, id, ts, spid, type, data) VALUES (?,?,?,?,?,?)",
                [(op, e.id, e.ts, e.spid, e.type, json.dumps(e.data)) for op, events in batch for e in events],
            )

    def events(self, operation_uuid: str, *, after: int = 0, spid: int | None = None) -> list[Event]:
        sql = "SELECT id, ts, spid, type, data FROM events WHERE operation_uuid=? AND id>?"
        params: list[Any] = [operation_uuid, after]
        if spid is not None:
            sql += " AND (spid=? OR spid IS NULL)"
            params.append(spid)
        return [Event(r[0], r[1], r[3], r[2], json.loads(r[4])) for r in self.db.execute(sql + " ORDER BY id", params)]

    def last_event_id(self, operation_uuid: str) -> int:
        row = self.db.execute("SELECT MAX(id) FROM events WHERE operation_uuid=?", (operation_uuid,)).fetchone()
        return row[0] or 0

    # -- files ------------------------------------------------------------------------------------
    def add_file(self, uuid: str, sha256: str, size: int) -> StoredFile:
        now = time.time()
        self.db.execute("INSERT INTO files(uuid, sha256, size, created_at, updated_at) VALUES (?,?,?,?,?)"
                        " ON CONFLICT(sha256) DO UPDATE SET updated_at=excluded.updated_at",
                        (uuid, sha256, size, now, now))
        return self.file_by_sha256(sha256)

    def add_files(self, files: Iterable[tuple[str, str, int]]) -> list[StoredFile]:
        """add_file for many (uuid, sha256, size) at once, in one transaction (a batch upload of 10,000 small
        files: one commit instead of 10,000); the records come back in the order given."""
        now = time.time()
        rows = [(uuid, sha256, size, now, now) for uuid, sha256, size in files]
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO files(uuid, sha256, size, created_at, updated_at) VALUES (?,?,?,?,?)"
                                " ON CONFLICT(sha256) DO UPDATE SET updated_at=excluded.updated_at", rows)
        found: dict[str, StoredFile] = {}
        shas = sorted({row[1] for row in rows})
        for start in range(0, len(shas), 500):  # SQLite caps the parameters of one statement (999 before 3.32)
            part = shas[start:start + 500]
            query = f"SELECT * FROM files WHERE sha256 IN ({','.join('?' * len(part))})"
            found.update((r["sha256"], self._file_from_row(r)) for r in self.db.execute(query, part))
        return [found[row[1]] for row in rows]

    def _file_from_row(self, row: sqlite3.Row) -> StoredFile:
        return StoredFile(row["uuid"], row["sha256"], row["size"], row["created_at"], row["updated_at"])

    def file_by_sha256(self, sha256: str) -> StoredFile:
        row = self.db.execute("SELECT * FROM files WHERE sha256=?", (sha256.lower(),)).fetchone()
        if row is None:
            raise NotFound(f"file with sha256 {sha256} not found")
        return self._file_from_row(row)

    def file_by_uuid(self, uuid: str) -> StoredFile:
        row = self.db.execute("SELECT * FROM files WHERE uuid=?", (uuid.lower(),)).fetchone()
        if row is None:
            raise NotFound(f"file {uuid} not found")
        return self._file_from_row(row)

    def list_files(self, *, limit: int = 100, offset: int = 0, since: float | None = None,
                   until: float | None = None) -> list[StoredFile]:
        sql, params = "SELECT * FROM files WHERE updated_at>=? AND updated_at<=?", [since or 0.0, until or 1e18]
        rows = self.db.execute(sql + " ORDER BY created_at, uuid LIMIT ? OFFSET ?", (*params, limit, offset))
        return [self._file_from_row(r) for r in rows]


def _created_between(since: float | None, until: float | None) -> tuple[list[str], list[Any]]:
    """WHERE clauses and parameters for the API's since/until filters."""
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (("created_at>=?", since), ("created_at<=?", until)):
        if value is not None:
            where.append(clause)
            params.append(value)
    return where, params


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
