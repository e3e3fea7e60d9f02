"""The one directory walk the engine's size counters share (disk_usage, layer_content, layer_cap)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator


def lstat_tree(path: str) -> Iterator[os.stat_result]:
    """lstat of every entry below `path` (not `path` itself), depth first, never following a symlink.
    Entries and directories that vanish or cannot be read mid-walk (a layer deleted meanwhile, a run still
    writing its upper) are skipped, not raised."""
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                listed = list(entries)
        except OSError:
            continue
        for entry in listed:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)
            yield st
