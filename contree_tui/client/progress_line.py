"""An import's (and a sync's) progress as text: one line rewritten in place on a terminal (a bar of bytes
fetched), plain lines for a pipe or a log file (a line per step, none per byte).

No curses and no colours: `\\r` and "erase to end of line" (ESC [ K) work on every terminal a CLI meets,
and the line is cut to the terminal's width so it never wraps (a wrapped line cannot be rewritten in place).
"""

from __future__ import annotations

import os
from typing import TextIO

from contree_tui.client.image_import import ImportProgress
from contree_tui.client.observable import Observable
from contree_tui.client.render import human_size
from contree_tui.client.sync import SyncPhase, SyncStatus

BAR_WIDTH = 24
LABEL_WIDTH = 32  # a long path keeps its end (the layout's name and ref), so the bar still fits in 80 columns
ERASE_LINE = "\r\x1b[K"


def short_label(ref: str, width: int = LABEL_WIDTH) -> str:
    return ref if len(ref) <= width else "…" + ref[-(width - 1):]


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """`[=========>          ]`: `width` cells between the brackets."""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    if filled >= width:
        return "[" + "=" * width + "]"
    return "[" + "=" * filled + ">" + " " * (width - filled - 1) + "]"


def progress_text(label: str, progress: ImportProgress, *, bar: bool) -> str:
    """`alpine:3  download 2/5  [====>   ]  42%  12.3 MiB / 29.0 MiB fetched`; the bar only when `bar` and the
    total is known (the fraction counts extraction too: ImportProgress.fraction)."""
    parts = [label, progress.step or "starting"]
    fraction = progress.fraction
    if fraction is not None:
        if bar:
            parts.append(progress_bar(fraction))
        parts.append(f"{fraction * 100:3.0f}%")
        parts.append(f"{human_size(progress.bytes_done)} / {human_size(progress.bytes_total)} fetched")
    return "  ".join(parts)


class ProgressLine:
    """Where `contree-tui import` reports: on a terminal one live line plus the log lines above it; elsewhere
    a line at the first event of each step and each log line."""

    def __init__(self, stream: TextIO, label: str, *, live: bool | None = None) -> None:
        self.stream = stream
        self.label = short_label(label)
        self.live = stream.isatty() if live is None else live
        self._shown = ""
        self._steps_said: set[str] = set()

    def update(self, progress: ImportProgress, log_line: str | None = None) -> None:
        if log_line is not None:
            self._clear()
            self.stream.write(f"{log_line}\n")
        if self.live:
            self._draw(progress_text(self.label, progress, bar=True))
        elif progress.step and progress.step not in self._steps_said:
            # each step once: layers fetched in parallel interleave their events, a line per change of
            # step would be a line per event
            self._steps_said.add(progress.step)
            self.stream.write(progress_text(self.label, progress, bar=False) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Before the command's last words: the live line goes (its final state is said by them)."""
        self._clear()
        self.stream.flush()

    def _draw(self, text: str) -> None:
        try:
            width = os.get_terminal_size(self.stream.fileno()).columns or 80  # a fresh pty says 0
        except (OSError, ValueError):
            width = 80
        width -= 1  # the last column: some terminals wrap when it is written
        text = text if len(text) <= width else text[: max(0, width - 1)] + "…"
        if text != self._shown:
            self.stream.write(ERASE_LINE + text)
            self._shown = text

    def _clear(self) -> None:
        if self.live and self._shown:
            self.stream.write(ERASE_LINE)
            self._shown = ""


def sync_progress_text(label: str, status: SyncStatus) -> str:
    """`~/proj  sync  [=====>   ]  42%  4,200/10,000 files  1.2 MiB / 3.0 MiB`"""
    fraction = status.fraction
    if fraction is None:
        return f"{label}  scanning"
    return (f"{label}  sync  {progress_bar(fraction)}  {fraction * 100:3.0f}%  {status.done_files:,}/"
            f"{status.files:,} files  {human_size(status.done_bytes)} / {human_size(status.bytes)}")


class SyncProgressLine(ProgressLine):
    """`contree-tui sync` (and a run's sync) on a terminal: the live line follows the syncer's status while
    it uploads; on a pipe nothing is said until the command's own last line."""

    def __init__(self, stream: TextIO, label: str, status: Observable[SyncStatus], *,
                 live: bool | None = None) -> None:
        super().__init__(stream, label, live=live)
        self._unsubscribe = status.subscribe(self._show)

    def _show(self, status: SyncStatus) -> None:
        if self.live and status.phase is SyncPhase.SYNCING:
            self._draw(sync_progress_text(self.label, status))
            self.stream.flush()

    def close(self) -> None:
        self._unsubscribe()
        super().close()
