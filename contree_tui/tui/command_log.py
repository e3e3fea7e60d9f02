"""The session's command log (`@`): every command run, verb, rollback, forward, jump and sync, with its time,
once known its result, and the working snapshot it left: the log is the session's undo/redo list (`enter` on
an entry makes its snapshot working again, itself a new entry). Entries are updated in place as runs finish.
No Textual here."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

MAX_ENTRIES = 2000


class Outcome(enum.Enum):
    PENDING = "pending"
    OK = "ok"
    FAILED = "failed"


@dataclass
class LogEntry:
    at: datetime
    kind: str  # "run", "branch", a verb's name ("tag", "env", …), "verb" (a bad one), "rollback", "forward",
    # "jump", "sync", "interrupt"
    text: str
    result: str = ""
    outcome: Outcome = Outcome.PENDING
    snapshot: str | None = None  # the working snapshot after it (a run's: its result once it made one)

    def finish(self, result: str, ok: bool = True) -> None:
        self.result = result
        self.outcome = Outcome.OK if ok else Outcome.FAILED


class CommandLog:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.entries: list[LogEntry] = []
        self.max_entries = max_entries

    def record(self, at: datetime, kind: str, text: str, result: str | None = None, *, ok: bool = True,
               snapshot: str | None = None) -> LogEntry:
        """A new entry; with `result` it is finished at once (verbs, moves), else pending (a run going)."""
        entry = LogEntry(at, kind, text, snapshot=snapshot)
        if result is not None:
            entry.finish(result, ok)
        self.entries.append(entry)
        if len(self.entries) > self.max_entries:
            del self.entries[: len(self.entries) - self.max_entries]
        return entry

    def __len__(self) -> int:
        return len(self.entries)
