"""How a user names a snapshot in the command bar (`:diff A B`): `.` for the working snapshot, a tag, a uuid
or its first characters (at least MIN_PREFIX, as the tree shows 8). No Textual here."""

from __future__ import annotations

from contree_tui.tui.model import Lineage, Snapshot

WORKING_REF = "."
MIN_PREFIX = 4


class RefError(ValueError):
    """`str()` says which name did not resolve and why."""


def resolve(ref: str, lineage: Lineage, working: str | None) -> Snapshot:
    if ref == WORKING_REF:
        snapshot = lineage.get(working)
        if snapshot is None:
            raise RefError("no working snapshot: choose one in the tree (enter)")
        return snapshot
    tagged = [s for s in lineage.snapshots.values() if s.tag and ref in s.tag.split(", ")]
    if tagged:
        return tagged[0]  # a tag lives on one image
    word = ref.lower()
    if len(word) < MIN_PREFIX or any(c not in "0123456789abcdef-" for c in word):
        raise RefError(f"{ref!r} is no tag here, nor a snapshot id (at least {MIN_PREFIX} hex digits)")
    found = [s for s in lineage.snapshots.values() if s.uuid.startswith(word)]
    if not found:
        raise RefError(f"no snapshot {ref!r} in the tree")
    if len(found) > 1:
        names = ", ".join(sorted(s.short for s in found)[:5])
        raise RefError(f"{ref!r} names {len(found)} snapshots ({names}): type more of the id")
    return found[0]
