"""How a run's outcome reads, in one place for the tree, the operations table, the log's last line and the
command log: the glyph (✓ ✗ ⟳ ◌ ⊘) and the words. A run whose operation succeeded is described by its
command's exit (`✗ exit 3`); the operation's status word (`failed`, `cancelled`, `executing`) is shown only
where it is the news: while it runs, when the operation itself failed, and for an import (no exit code).
No Textual here."""

from __future__ import annotations

from contree_client.models import OperationStatus

from contree_tui.client.outcome_words import outcome_words as words_of
from contree_tui.tui.model import Operation

STATUS_ICONS = {
    OperationStatus.PENDING: ("◌", "running"),
    OperationStatus.ASSIGNED: ("◌", "running"),
    OperationStatus.EXECUTING: ("⟳", "running"),
    OperationStatus.SUCCESS: ("✓", "ok"),
    OperationStatus.FAILED: ("✗", "failed"),
    OperationStatus.CANCELLED: ("⊘", "failed"),
}


def op_icon(op: Operation) -> tuple[str, str]:
    """The glyph and the style name for an operation's state (a non-zero exit counts as a failure)."""
    icon, kind = STATUS_ICONS.get(op.status, ("?", "running"))
    if op.status is OperationStatus.SUCCESS and op.exit_code not in (None, 0):
        return "✗", "failed"
    return icon, kind


def outcome_words(op: Operation) -> str:
    """`exit 3`, `timed out`, `executing`, `failed` (client/outcome_words.py: the CLI's `ops` says the same)."""
    return words_of(op.status, op.exit_code, op.timed_out)


def outcome(op: Operation) -> str:
    """`✗ exit 3`: the glyph and the words (a timed-out run also its exit: `✗ timed out · exit -1`)."""
    words = outcome_words(op)
    if op.timed_out and op.status is OperationStatus.SUCCESS and op.exit_code is not None:
        words += f" · exit {op.exit_code}"
    return f"{op_icon(op)[0]} {words}"


def one_line(command: str | None, width: int = 40) -> str:
    """A command as a toast or the command log names it: on one line, cut to `width` with `…`."""
    flat = " ".join((command or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
