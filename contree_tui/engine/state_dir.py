"""Where the engine keeps its state: one directory, on one filesystem so commits are renames.

Default: `$XDG_DATA_HOME/contree-tui/engine` (~/.local/share/...); `CONTREE_TUI_ENGINE_DIR` or an explicit
path (the `--state-dir` flag) override it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from contree_tui.paths import LOG_NAME, PID_NAME, SOCKET_NAME, TOKEN_NAME, engine_root


@dataclass(frozen=True)
class StateDir:
    root: Path

    @classmethod
    def create(cls, path: str | Path | None = None) -> StateDir:
        root = engine_root(path)
        state = cls(root)
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        for sub in (state.layers, state.blobs, state.runs):
            sub.mkdir(exist_ok=True)
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
