"""What the state dir's layers cost on disk, per layer and per image (`contree-tui engine df`, GET /v1/x/df).

Sizes are what `du` reports: allocated blocks (st_blocks * 512) of every entry, directories included, a
hard-linked inode counted once. A layer is immutable once committed, so its size is measured once (one walk
in a thread; measured here ~5 µs an entry: 1.3 ms for busybox's 283, ~55 ms for a 10,000-file Debian rootfs)
and remembered.

Layers are shared: every image holds its whole chain (Image.layers, bottom first), so a run's child shares all
its parent's layers and adds one; squashed layers are hard links to the files of the layers they merge.
Per image, `own` is the bytes of layers no other image references (what deleting that image alone frees),
`shared` the bytes of its layers that other images reference too, and `added` the layers it put on top of
its parent (a run's result layer; all of an import's layers), which is the size the TUI shows.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from contree_tui.engine.models import Image
from contree_tui.engine.tree_walk import lstat_tree

Inode = tuple[int, int]


@dataclass(frozen=True)
class LayerSize:
    """`bytes`: the layer alone, as `du -s -B1 <layer dir>`; `linked`: its inodes with more than one link
    (bytes each), so a total over several layers counts an inode they share once (as `du -s` of them all)."""

    bytes: int
    linked: dict[Inode, int] = field(default_factory=dict)

    @property
    def unlinked(self) -> int:
        return self.bytes - sum(self.linked.values())


def measure_layer(path: str) -> LayerSize:
    """Walk one layer dir without following symlinks. A layer that vanished (deleted meanwhile) is 0."""
    seen: dict[Inode, int] = {}
    total = 0
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return LayerSize(0)
    total += st.st_blocks * 512
    for st in lstat_tree(path):
        size = st.st_blocks * 512
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen[key] = size
        total += size
    return LayerSize(total, seen)


class LayerSizes:
    """Sizes of committed layers, measured once each (layers never change), forgotten when deleted."""

    def __init__(self, layers_dir: str) -> None:
        self._layers_dir = layers_dir
        self._known: dict[str, LayerSize] = {}

    def measure(self, layers: Iterable[str]) -> dict[str, LayerSize]:
        """Blocking (walks the layers not measured yet): call it from a thread."""
        out = {}
        for layer in layers:
            size = self._known.get(layer)
            if size is None:
                size = measure_layer(f"{self._layers_dir}/{layer}")
                self._known[layer] = size
            out[layer] = size
        return out

    def cached(self, layer: str) -> LayerSize | None:
        return self._known.get(layer)

    def forget(self, layers: Iterable[str]) -> None:
        for layer in layers:
            self._known.pop(layer, None)


def physical_bytes(sizes: Iterable[LayerSize]) -> int:
    """The bytes of several layers together, a hard-linked inode counted once (`du -s` over them all)."""
    total = 0
    linked: dict[Inode, int] = {}
    for size in sizes:
        total += size.unlinked
        linked.update(size.linked)
    return total + sum(linked.values())


def added_layers(image: Image, parent: Image | None, squashed: set[str]) -> list[str]:
    """The layers `image` put on top of its parent's chain: a run's result layer (none when the run changed
    only env or workdir), every layer of a root image. A squashed layer is a merge of layers the parent
    already had (hard links), so it adds nothing new. A run's result whose parent was deleted: its top layer
    (a run adds one layer, and the newest stay on top of any squash)."""
    if parent is None:
        return list(image.layers[-1:]) if image.parent is not None else list(image.layers)
    below = set(parent.layers)
    return [layer for layer in image.layers if layer not in below and layer not in squashed]


def image_usage(image: Image, sizes: dict[str, LayerSize], users: Counter[str]) -> dict[str, Any]:
    """One image's row of the df answer; `users` counts the images referencing each layer."""
    own = sum(sizes[layer].bytes for layer in image.layers if users[layer] <= 1)
    shared = sum(sizes[layer].bytes for layer in image.layers if users[layer] > 1)
    return {"uuid": image.uuid, "tags": list(image.tags), "created_at": image.created_at,
            "operation_uuid": image.operation_uuid, "layers": list(image.layers), "own": own, "shared": shared}


def disk_usage(images: list[Image], sizes: dict[str, LayerSize], on_disk: list[str], squash_cache: set[str],
               free: int, capacity: int) -> dict[str, Any]:
    """The GET /v1/x/df answer. `on_disk`: every dir in layers/ (a layer no image references is cache or
    leftover: squashes kept for siblings, or a crash's orphan the next start sweeps)."""
    users: Counter[str] = Counter(layer for image in images for layer in set(image.layers))
    rows = [image_usage(image, sizes, users) for image in images]
    layers = [{"id": layer, "bytes": sizes[layer].bytes, "images": users[layer],
               "squash_cache": layer in squash_cache} for layer in on_disk]
    unreferenced = [sizes[layer] for layer in on_disk if users[layer] == 0]
    return {
        "images": rows,
        "layers": layers,
        "total": {"images": len(images), "layers": len(on_disk),
                  "layer_bytes": physical_bytes(sizes[layer] for layer in on_disk),
                  "own_bytes": sum(row["own"] for row in rows),
                  "unreferenced_bytes": physical_bytes(unreferenced)},
        "filesystem": {"free": free, "size": capacity},
    }
