"""What a layer holds as a user counts it: the bytes of the files in it (added or changed: overlay copies a
changed file up whole), how many such files, how many it removes (whiteouts). `x_engine.content_bytes`,
`files` and `removed` of GET /v1/inspect/{uuid}/.

Not disk_usage.py's `du` bytes: those count allocated blocks, directories included, so a run that writes one
17-byte file into / adds a 4 KiB block for the file and one per directory overlay copied up (/, /tmp, the
run's cwd...): "12.0 KiB added" for 17 bytes. A layer never changes once committed, so each is walked once
(~5 µs an entry, as disk_usage) and remembered.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass

from contree_tui.engine.layers import is_whiteout
from contree_tui.engine.tree_walk import lstat_tree


@dataclass(frozen=True)
class LayerContent:
    bytes: int = 0  # st_size of its regular files (a hard-linked inode once)
    files: int = 0  # entries that are not directories or whiteouts: files, symlinks, devices
    removed: int = 0  # whiteouts: paths of the layers below it hides

    def __add__(self, other: LayerContent) -> LayerContent:
        return LayerContent(self.bytes + other.bytes, self.files + other.files, self.removed + other.removed)


def measure_content(path: str) -> LayerContent:
    """Walk one layer dir without following symlinks; a layer that vanished (deleted meanwhile) is empty."""
    size = files = removed = 0
    seen: set[tuple[int, int]] = set()
    for st in lstat_tree(path):
        if stat.S_ISDIR(st.st_mode):
            continue
        if is_whiteout(st):
            removed += 1
        else:
            files += 1
            if stat.S_ISREG(st.st_mode) and (st.st_nlink == 1 or (st.st_dev, st.st_ino) not in seen):
                seen.add((st.st_dev, st.st_ino))
                size += st.st_size
    return LayerContent(size, files, removed)


class LayerContents:
    """Contents of committed layers, measured once each, forgotten when deleted."""

    def __init__(self, layers_dir: str) -> None:
        self._layers_dir = layers_dir
        self._known: dict[str, LayerContent] = {}

    def total(self, layers: Iterable[str]) -> LayerContent:
        """Blocking (walks the layers not measured yet): call it from a thread."""
        total = LayerContent()
        for layer in layers:
            content = self._known.get(layer)
            if content is None:
                content = self._known[layer] = measure_content(f"{self._layers_dir}/{layer}")
            total += content
        return total

    def forget(self, layers: Iterable[str]) -> None:
        for layer in layers:
            self._known.pop(layer, None)
