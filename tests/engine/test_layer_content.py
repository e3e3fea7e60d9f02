"""What a layer holds as a user counts it (x_engine content_bytes / files / removed): the bytes of its files,
a hard-linked inode once, symlinks counted as files of no bytes, whiteouts as removals, directories not at
all (du counted a 4 KiB block for each, 12 KiB for a layer adding one 17-byte file)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from contree_tui.engine.layer_content import LayerContent, LayerContents, measure_content


def test_a_layer_counts_file_bytes_files_and_whiteouts_not_directories(tmp_path: Path) -> None:
    layer = tmp_path / "layers" / "one"
    (layer / "tmp" / "deep").mkdir(parents=True)
    (layer / "tmp" / "deep" / "seventeen").write_bytes(b"12345678901234567")
    (layer / "linked").write_bytes(b"abcde")
    os.link(layer / "linked", layer / "tmp" / "linked-again")  # one inode: its 5 bytes once, two paths
    os.symlink("/tmp/deep/seventeen", layer / "pointer")
    os.mknod(layer / "tmp" / "gone", stat.S_IFCHR | 0o000, os.makedev(0, 0))  # overlay's whiteout

    assert measure_content(str(layer)) == LayerContent(bytes=17 + 5, files=4, removed=1)
    assert measure_content(str(tmp_path / "vanished")) == LayerContent()

    contents = LayerContents(str(tmp_path / "layers"))
    assert contents.total(["one", "one"]) == LayerContent(44, 8, 2), "summed per layer, measured once"
    (layer / "late").write_bytes(b"x")
    assert contents.total(["one"]).bytes == 22, "a committed layer never changes: remembered"
    contents.forget(["one"])
    assert contents.total(["one"]).bytes == 23
