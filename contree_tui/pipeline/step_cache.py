"""What earlier successful steps produced, keyed by everything that decides a step's result: a step whose source
snapshot, command (or function and arguments), env, cwd, disposability, injected files' digests and network all
match an earlier success is a cache hit and runs nothing.

The network is an input because it decides what a step can do, and so whether it succeeds: a step that passed
with a network (a test that fetches, a `pip install` from an index) may fail offline, and an offline step is
often offline on purpose (hermetic tests), so a hit from a networked run would report a pass it never showed.
Only `network=False` enters the key: networked steps (the default) keep the keys they had before it existed.
The cost is small where it matters most: the cache is per target, and an engine that cannot give a network never
had a networked success to reuse.

One sqlite file per target, beside the sync cache (`$XDG_CACHE_HOME/contree-tui/pipeline/<cache key>.sqlite`):
an image uuid only means something on the server that made it, and the connection's cache key changes with the
engine's state or the token's namespace.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from contree_tui.client.sync_cache import cache_root, open_cache_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS steps (
    key TEXT PRIMARY KEY,        -- sha256 of the step's inputs (StepInputs.key)
    result_image TEXT NOT NULL,  -- the snapshot the step left (its source when it was disposable)
    operation TEXT NOT NULL,
    return_value TEXT,           -- a function step's result line (JSON), if any
    output BLOB,                 -- the step's log tail, shown again on a hit
    saved_at REAL NOT NULL
) WITHOUT ROWID;
"""
OUTPUT_KEPT = 64 * 1024  # the log tail a hit shows again: a screenful and then some, not a 10 MiB build log


@dataclass(frozen=True)
class StepInputs:
    source: str  # image uuid
    command: str
    env: Mapping[str, str]
    cwd: str | None
    disposable: bool
    files: Mapping[str, str]  # sandbox path -> sha256 of the content
    network: bool = True

    @property
    def key(self) -> str:
        inputs = {"source": self.source, "command": self.command, "env": dict(self.env), "cwd": self.cwd,
                  "disposable": self.disposable, "files": dict(self.files)}
        if not self.network:
            inputs["network"] = False
        blob = json.dumps(inputs, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class CachedStep:
    result_image: str
    operation: str
    return_value: str | None
    output: bytes


class StepCache:
    def __init__(self, path: Path | None) -> None:
        """`path=None`: in memory (remembers nothing between processes)."""
        self.path = path
        self._db = open_cache_db(path)
        self._db.executescript(SCHEMA)

    @classmethod
    def for_key(cls, cache_key: str) -> StepCache:
        return cls(cache_root() / "pipeline" / f"{cache_key}.sqlite")

    def get(self, key: str) -> CachedStep | None:
        row = self._db.execute("SELECT result_image, operation, return_value, output FROM steps WHERE key = ?",
                               (key,)).fetchone()
        return CachedStep(row[0], row[1], row[2], bytes(row[3] or b"")) if row else None

    def put(self, key: str, step: CachedStep) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?)",
                             (key, step.result_image, step.operation, step.return_value,
                              step.output[-OUTPUT_KEPT:], time.time()))

    def forget(self, key: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM steps WHERE key = ?", (key,))

    def close(self) -> None:
        self._db.close()


def content_digest(path: Path, memo: dict[Path, str] | None = None) -> str:
    if memo is not None and path in memo:
        return memo[path]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if memo is not None:
        memo[path] = digest
    return digest


__all__ = ["CachedStep", "StepCache", "StepInputs", "content_digest"]
