"""What enter opens in the snapshot detail view's list (screens/snapshot_detail.py, detail_diff.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """A path in an image (this snapshot's, or the base's for a removed file), maybe at a line; with `base`,
    a modified file whose line diff against the base enter shows."""

    path: str
    kind: str
    image: str
    line: int | None = None
    note: str = ""
    base: str | None = None
