"""Saving a log to a file: where it goes by default, and the write, whose failures come back as a reason the
log panel shows in a toast."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


class LogSaveError(Exception):
    """The log could not be written; `str()` says why, for the user."""


def default_log_path(key: str | None, folder: Path | None = None) -> Path:
    """`./<short uuid>.log` for an operation's log (`./merged.log` without one), in `folder` (default: the
    current directory), the place a user looks first."""
    name = f"{key[:8]}.log" if key else "merged.log"
    return Path(folder or ".") / name


def resolve_log_path(text: str, folder: Path | None = None) -> Path:
    """What the user typed as a path: `~` expanded, relative to `folder` (default: the current directory)."""
    text = text.strip()
    if not text:
        raise LogSaveError("no path given")
    path = Path(text).expanduser()
    return path if path.is_absolute() else Path(folder or Path.cwd()) / path


def write_log(path: Path, lines: Iterable[str]) -> int:
    """Write `lines` to `path` (replacing the file if it exists), one per line; how many were written."""
    if path.is_dir():
        raise LogSaveError(f"{path} is a directory")
    if not path.parent.is_dir():
        raise LogSaveError(f"no directory {path.parent}")
    count = 0
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", errors="replace") as out:
            for line in lines:
                out.write(line)
                out.write("\n")
                count += 1
        os.replace(tmp, path)  # a reader never sees half a log, and a failed save leaves the old file
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LogSaveError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return count
