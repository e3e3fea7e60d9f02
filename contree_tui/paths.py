"""Where the embedded engine lives on disk — shared by the engine and the client that starts it.

This is part of the wire contract between the two layers (like the socket itself): the client never
imports engine code, it only needs to know where to find or start the engine.
"""

from __future__ import annotations

import os
from pathlib import Path

ENGINE_DIR_ENV = "CONTREE_TUI_ENGINE_DIR"
SOCKET_NAME = "engine.sock"
PID_NAME = "engine.pid"
LOG_NAME = "engine.log"
TOKEN_NAME = "engine.token"


def default_engine_root() -> Path:
    """`$CONTREE_TUI_ENGINE_DIR`, else `$XDG_DATA_HOME/contree-tui/engine` (~/.local/share/...)."""
    explicit = os.environ.get(ENGINE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data_home) / "contree-tui" / "engine"


def engine_root(path: str | Path | None = None) -> Path:
    return (Path(path).expanduser() if path is not None else default_engine_root()).resolve()


def engine_socket(root: Path) -> Path:
    return root / SOCKET_NAME
