"""What a snapshot changed against its parent: files added, modified, removed.

The inspect API has no diff and its listing carries no checksum, so the diff compares the two images'
recursive listings (type, size, mode, owner, mtime, symlink target), one list request per directory, cached
per image (images never change). That is the cheapest correct route over the wire; the engine itself could
answer from the child's top layer, but a hosted Contree has no such call.

The listing's mtime has whole seconds. A run that rewrites a file with content of the same size within the
second its parent was made leaves identical metadata, so those few files — same metadata, mtime no older
than the parent image (with a slack for clock skew) — have their contents compared. A run that keeps size
and mtime deliberately (`touch -r`, `tar x` of an old file of the same size) stays invisible: the API
exposes no ctime.

A file whose listings differ by mtime only (same size) is read too, within the same caps: "content" when the
bytes differ (the detail view then shows its line diff, client/file_diff.py), "mtime only" when they do not
(a touch, a rewrite with the same bytes).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from contree_tui.client.image_files import Entry, ImageFiles

CLOCK_SLACK = 2  # seconds: a hosted Contree's image clock and sandbox clock may differ a little
CONTENT_CHECKS = 64  # at most this many same-metadata files are read in both images
CONTENT_LIMIT = 1 << 20  # bytes read per side; beyond, same-metadata files count as unchanged
CONCURRENT_READS = 4


class Change(enum.Enum):
    ADDED = "added"
    MODIFIED = "modified"
    REMOVED = "removed"

    @property
    def sign(self) -> str:
        return {"added": "+", "modified": "~", "removed": "-"}[self.value]


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str
    change: Change
    kind: str  # the entry's kind in the child (the parent's for a removal): dir, file, symlink, other
    detail: str = ""  # for a modification: what differs ("size 4 → 9", "mode", "content", …)


@dataclass(frozen=True, slots=True)
class SnapshotDiff:
    parent: str
    child: str
    changes: tuple[FileChange, ...]
    listed: int = 0  # list requests sent for it (0: both listings were cached)
    compared: int = 0  # files whose contents were compared

    def of(self, change: Change) -> list[FileChange]:
        return [c for c in self.changes if c.change is change]

    @property
    def summary(self) -> str:
        counts = {c: len(self.of(c)) for c in Change}
        return ", ".join(f"{counts[c]} {c.value}" for c in Change)


def compare_entries(before: Entry, after: Entry) -> str:
    """What differs between two versions of a path, "" when the listings agree. A directory's size and mtime
    move whenever an entry is added or removed in it: those are reported through the entries, not here."""
    if before.kind != after.kind:
        return f"{before.kind} → {after.kind}"
    parts = []
    if after.kind != "dir":
        if before.size != after.size:
            parts.append(f"size {before.size} → {after.size}")
        if before.target != after.target:
            parts.append(f"target {before.target} → {after.target}")
        if before.mtime != after.mtime and not parts:
            parts.append("mtime")
    if before.mode != after.mode:
        parts.append(f"mode {before.permissions} → {after.permissions}")
    if (before.uid, before.gid) != (after.uid, after.gid):
        parts.append(f"owner {before.uid}:{before.gid} → {after.uid}:{after.gid}")
    return ", ".join(parts)


def diff_listings(before: Mapping[str, Entry], after: Mapping[str, Entry], *,
                  since: float | None = None) -> tuple[list[FileChange], list[str]]:
    """The changes from `before` to `after` (path → entry, recursive), sorted by path, and the regular files
    whose listings agree but whose contents may differ: mtime at or after `since` (the parent image's
    creation, seconds since the epoch). Without `since` there are no suspects."""
    changes: list[FileChange] = []
    suspects: list[str] = []
    threshold = None if since is None else int(since) - CLOCK_SLACK
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old is None:
            assert new is not None
            changes.append(FileChange(path, Change.ADDED, new.kind))
        elif new is None:
            changes.append(FileChange(path, Change.REMOVED, old.kind))
        elif detail := compare_entries(old, new):
            changes.append(FileChange(path, Change.MODIFIED, new.kind, detail))
        elif new.kind == "file" and threshold is not None and new.mtime >= threshold:
            suspects.append(path)
    return changes, suspects


async def diff_images(files: ImageFiles, parent: str, child: str, *,
                      parent_created: datetime | None = None) -> SnapshotDiff:
    """Walk both images (concurrently, listings cached), compare, then read the few ambiguous files."""
    sent = files.requests
    before, after = await asyncio.gather(files.walk(parent), files.walk(child))
    since = parent_created.timestamp() if parent_created is not None else None
    changes, suspects = diff_listings(before, after, since=since)
    touched = {c.path for c in changes if c.detail == "mtime" and c.kind == "file"}
    checked = [p for p in [*suspects, *sorted(touched)] if after[p].size <= CONTENT_LIMIT][:CONTENT_CHECKS]
    limit = asyncio.Semaphore(CONCURRENT_READS)

    async def differs(path: str) -> bool:
        async with limit:
            old, new = await asyncio.gather(files.read(parent, path), files.read(child, path))
        return old != new

    verdicts = dict(zip(checked, await asyncio.gather(*(differs(p) for p in checked)), strict=True))
    rewritten = [FileChange(p, Change.MODIFIED, "file", "content") for p in suspects if verdicts.get(p)]
    changes = [FileChange(c.path, c.change, c.kind, "content" if verdicts[c.path] else "mtime only")
               if c.path in touched and c.path in verdicts else c for c in changes]
    if rewritten:
        changes = sorted([*changes, *rewritten], key=lambda c: c.path)
    return SnapshotDiff(parent, child, tuple(changes), listed=files.requests - sent, compared=len(checked))
