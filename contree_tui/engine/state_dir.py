"""Where the engine keeps its state: one directory, on one filesystem so commits are renames.

Default: `$XDG_DATA_HOME/contree-tui/engine` (~/.local/share/...); `CONTREE_TUI_ENGINE_DIR` or an explicit
path (the `--state-dir` flag) override it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from contree_tui.engine.state_mode import claim_state_mode, record_state_mode
from contree_tui.paths import LOG_NAME, PID_NAME, SOCKET_NAME, TOKEN_NAME, engine_root

FS_IOC_GETFLAGS, FS_IOC_SETFLAGS = 0x80086601, 0x40086602
FS_TOPDIR_FL = 0x00020000


def spread_subdirectories(path: Path) -> None:
    """Mark `path` a top of a directory hierarchy (chattr +T), so ext4 places each run's scratch dir in a
    block group of its own rather than next to its siblings.

    Every run creates and deletes a handful of inodes (its dirs, and overlay's checks at each mount). On an
    ext4 without a journal, allocation skips inodes deleted in the last few seconds one by one, so at ~100
    runs/s one crowded group made inode allocation the largest single cost of a trivial run (perf: 22% of
    all CPU in ext4's recently_deleted). Other filesystems ignore or refuse the flag; either is fine.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        flags = struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("i", 0)))[0]
        if not flags & FS_TOPDIR_FL:
            fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags | FS_TOPDIR_FL))
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class StateDir:
    root: Path

    @classmethod
    def create(cls, path: str | Path | None = None) -> StateDir:
        root = engine_root(path)
        state = cls(root)
        claim_state_mode(root)  # before anything changes: root and rootless never share a dir (state_mode.py)
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        record_state_mode(root)
        for sub in (state.layers, state.blobs, state.runs):
            sub.mkdir(exist_ok=True)
        spread_subdirectories(state.runs)
        # Mountpoints live in a lower layer of their own, so a run never writes /proc or /dev into its upper.
        for name in ("proc", "dev", "sys"):
            (state.scaffold / name).mkdir(parents=True, exist_ok=True)
        return state

    @property
    def id(self) -> str:
        """Short, stable, path-safe name for per-engine host resources (cgroups)."""
        return hashlib.sha256(str(self.root).encode()).hexdigest()[:12]

    @property
    def database(self) -> Path:
        return self.root / "engine.db"

    @property
    def lock_file(self) -> Path:
        return self.root / "engine.lock"

    @property
    def socket(self) -> Path:
        return self.root / SOCKET_NAME

    @property
    def pid_file(self) -> Path:
        return self.root / PID_NAME

    @property
    def log_file(self) -> Path:
        return self.root / LOG_NAME

    @property
    def token_file(self) -> Path:
        return self.root / TOKEN_NAME

    @property
    def layers(self) -> Path:
        return self.root / "layers"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def scaffold(self) -> Path:
        return self.root / "scaffold"
