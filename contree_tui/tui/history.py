"""The command bar's history: every line submitted, kept across sessions in one plain text file (one line per
entry, oldest first) in the client's cache dir, next to the working positions. Shared by every folder and
target, like a shell's history. No Textual here: the walk (↑/↓) and the reverse search (ctrl+r) are plain
state machines the bar drives.

Several sessions may append at once: each `add` is one O_APPEND write of one line, which POSIX keeps whole.
The file is cut back to `limit` entries when a session starts and finds it at more than twice that.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from contree_tui.client.sync_cache import cache_root

log = logging.getLogger("contree_tui.tui.history")

DEFAULT_LIMIT = 1000


def history_path() -> Path:
    """`$XDG_CACHE_HOME/contree-tui/command-history`."""
    return cache_root() / "command-history"


class CommandHistory:
    """Entries oldest first. `path=None` keeps them in memory only. A file that cannot be read or written
    costs the persistence, never the session (logged once)."""

    def __init__(self, path: Path | None, limit: int = DEFAULT_LIMIT) -> None:
        self.path = path
        self.limit = limit
        self.entries: list[str] = []
        self._broken = False
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return
        except OSError as exc:
            self._fail(exc)
            return
        self.entries = [line for line in lines if line.strip()][-self.limit:]
        if len(lines) > 2 * self.limit:
            try:
                temp = path.with_name(path.name + ".tmp")
                temp.write_text("".join(e + "\n" for e in self.entries), encoding="utf-8")
                os.replace(temp, path)
            except OSError as exc:
                self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        if not self._broken:
            log.warning("command history %s: %s", self.path, exc)
        self._broken = True

    def add(self, line: str) -> None:
        """Record a submitted line (one line: newlines become spaces); a repeat of the last one is skipped."""
        line = " ".join(line.splitlines()).strip()
        if not line or (self.entries and self.entries[-1] == line):
            return
        self.entries.append(line)
        if len(self.entries) > self.limit:
            del self.entries[: len(self.entries) - self.limit]
        if self.path is None or self._broken:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:
            self._fail(exc)

    def search(self, query: str, before: int | None = None) -> int | None:
        """The index of the newest entry containing `query` older than index `before` (default: all)."""
        start = len(self.entries) if before is None else min(before, len(self.entries))
        for index in range(start - 1, -1, -1):
            if query in self.entries[index]:
                return index
        return None

    def __len__(self) -> int:
        return len(self.entries)


class HistoryWalk:
    """↑/↓ through the history from a draft (what was typed before the first ↑, given back after the last ↓)."""

    def __init__(self, history: CommandHistory, draft: str) -> None:
        self.history = history
        self.draft = draft
        self.index = len(history.entries)  # == len: at the draft

    def older(self) -> str | None:
        """The previous entry; None at the oldest (stay where you are)."""
        if self.index == 0:
            return None
        self.index -= 1
        return self.history.entries[self.index]

    def newer(self) -> str | None:
        """The next entry, then the draft; None past the draft."""
        if self.index >= len(self.history.entries):
            return None
        self.index += 1
        if self.index == len(self.history.entries):
            return self.draft
        return self.history.entries[self.index]


class ReverseSearch:
    """ctrl+r: the query grows as the user types; each further ctrl+r finds the next older match."""

    def __init__(self, history: CommandHistory, original: str) -> None:
        self.history = history
        self.original = original  # given back when the search is abandoned
        self.query = ""
        self.index: int | None = None

    @property
    def match(self) -> str | None:
        return self.history.entries[self.index] if self.index is not None else None

    def type(self, text: str) -> str | None:
        """A longer (or shorter) query: searched again from the newest entry."""
        self.query = text
        self.index = self.history.search(self.query) if self.query else None
        return self.match

    def older(self) -> str | None:
        """The next older match; the current one stays when there is none."""
        if not self.query:
            return self.match
        found = self.history.search(self.query, self.index)
        if found is not None:
            self.index = found
        return self.match
