"""The state dir's layout choices that matter for speed."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
from pathlib import Path

import pytest

from contree_tui.engine.state_dir import FS_IOC_GETFLAGS, FS_TOPDIR_FL, StateDir


def _flags(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("i", 0)))[0]
    finally:
        os.close(fd)


def test_runs_dir_spreads_its_subdirectories_on_ext4(tmp_path: Path) -> None:
    fstype = subprocess.run(["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True).stdout.strip()
    if fstype not in ("ext2/ext3", "ext4"):
        pytest.skip(f"the TOPDIR flag is ext4's; {tmp_path} is {fstype}")
    state = StateDir.create(tmp_path / "state")
    assert _flags(state.runs) & FS_TOPDIR_FL
    assert not _flags(state.layers) & FS_TOPDIR_FL  # only where scratch dirs come and go
    StateDir.create(tmp_path / "state")  # idempotent on reopen
    assert _flags(state.runs) & FS_TOPDIR_FL
