"""The image a pipeline's steps that set none run on when the command gives no --image: the folder's working
snapshot on this target (client/position.py), the one `:pipeline` in the TUI and every other command use, so
`contree-tui pipeline FILE:FUNC` and `:pipeline FILE:FUNC` run on the same snapshot."""

from __future__ import annotations

import os
from pathlib import Path

from contree_tui.client.connection import Connection
from contree_tui.client.position import WorkingPosition


def working_snapshot(folder: str | Path | None, connection: Connection) -> str | None:
    """The folder's (default: the current one) working snapshot on the connection's target, or None."""
    return WorkingPosition(folder or os.getcwd(), connection.cache_key).image


__all__ = ["working_snapshot"]
