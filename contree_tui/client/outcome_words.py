"""How a run's outcome reads, for both faces (the TUI's table, tree and log; the CLI's `ops`): a run whose
operation succeeded is described by its command's exit (`exit 3`, `timed out`); the operation's status word
(`failed`, `cancelled`, `executing`) only where it is the news: while it runs, when the operation itself failed,
and for an import (no exit code). One vocabulary, so `ops` and the TUI never disagree (#12 §2)."""

from __future__ import annotations

from contree_client.models import OperationStatus


def outcome_words(status: OperationStatus, exit_code: int | None, timed_out: bool | None) -> str:
    """`exit 3`, `timed out`, `executing`, `failed`: at most 9 cells (`cancelled`, `executing`, `timed out`
    are the longest), so a status column 11 wide holds them with a glyph and a space."""
    if status is not OperationStatus.SUCCESS:
        return status.value.lower()
    if timed_out:
        return "timed out"
    if exit_code is not None:
        return f"exit {exit_code}"
    return "success"  # an import, or a run listed without its exit code


NO_CHANGE = "no change"  # a run whose result is the image it ran on
