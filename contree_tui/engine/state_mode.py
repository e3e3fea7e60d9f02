"""Root and rootless engines never share a state dir (#14): the mode is recorded when the dir is made.

A rootless engine's files belong to the user and their subordinate ids, its overlay metadata is in `user.*`
xattrs, and its socket lives elsewhere; a root engine's belong to host root with `trusted.*` xattrs. Either
would misread the other's layers (and root writing into a user's dir would leave files the user cannot
remove). So `engine.mode` holds `root` or `rootless UID` (the host uid of the user), and an engine of the
other mode refuses the dir, naming it, before it changes anything there.
"""

from __future__ import annotations

import os
from pathlib import Path

from contree_tui.engine.models import EngineError
from contree_tui.engine.privilege import running_rootless, uid_map

MODE_NAME = "engine.mode"
DATABASE_NAME = "engine.db"


def current_mode() -> str:
    """`root`, or `rootless UID` with the host uid that the namespace's uid 0 stands for."""
    if not running_rootless():
        return "root"
    host = next((outside for inside, outside, _ in uid_map() if inside == 0), os.getuid())
    return f"rootless {host}"


def _recorded_mode(root: Path) -> str | None:
    """The mode the dir was made in; None for a new dir. A dir made before modes were recorded was made by
    whoever owns it: its owner is this process's uid in the mode that made it (root's shows as `nobody` to a
    rootless engine, a user's as that user to root)."""
    try:
        return (root / MODE_NAME).read_text().strip()
    except FileNotFoundError:
        pass
    if not (root / DATABASE_NAME).exists():
        return None
    mine = root.stat().st_uid == os.geteuid()
    here = current_mode()
    if mine:
        return here
    return "root" if here != "root" else f"rootless {root.stat().st_uid}"


def _describe(mode: str) -> str:
    kind, _, uid = mode.partition(" ")
    return "a root engine" if kind == "root" else f"a rootless engine (a normal user's, uid {uid or '?'})"


def claim_state_mode(root: Path) -> None:
    """Refuse a state dir made in the other mode; record this mode in a new one. Call before creating
    anything in `root`; it writes the mode file only once the dir exists."""
    here = current_mode()
    recorded = _recorded_mode(root) if root.is_dir() else None
    if recorded is not None and recorded != here:
        raise EngineError(f"the state directory {root} was made by {_describe(recorded)}, and this is "
                          f"{_describe(here)}: root and rootless engines never share a state directory. "
                          "Use another --state-dir (or CONTREE_TUI_ENGINE_DIR)", status=409)


def record_state_mode(root: Path) -> None:
    path = root / MODE_NAME
    if not path.exists():
        tmp = root / f".{MODE_NAME}.{os.getpid()}"
        tmp.write_text(current_mode() + "\n")
        os.replace(tmp, path)
