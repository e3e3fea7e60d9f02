"""Progress of the CLI's long commands, one renderer for all (`import`, `engine bootstrap debian`'s import,
`export` on stderr; `pipeline --headless`'s steps under its lines on stdout): on a terminal one line redrawn
in place (a bar); in a pipe or a log file plain lines a reader or a CI log can use (a line per step, and one
every LINE_EVERY seconds while a step lasts), never carriage returns.

No curses and no colours: `\\r` and "erase to end of line" (ESC [ K) work on every terminal a CLI meets,
and the line is cut to the terminal's width so it never wraps (a wrapped line cannot be rewritten in place).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TextIO

from contree_tui.client.image_import import ImportProgress
from contree_tui.client.observable import Observable
from contree_tui.client.sizes import human_duration, human_size
from contree_tui.client.sync import SyncPhase, SyncStatus

BAR_WIDTH = 24
LABEL_WIDTH = 32  # a long path keeps its end (the layout's name and ref), so the bar still fits in 80 columns
ERASE_LINE = "\r\x1b[K"
REDRAW = 0.1  # seconds between redraws of a terminal's line: smooth enough, and ~nothing of the CPU
LINE_EVERY = 5.0  # seconds between plain lines while nothing else changes
# export's line carries the speed after the amount: with a 16-cell bar "exporting 3f2a9c1e  [bar]  50%
# 10.0 MiB of ~20.0 MiB  3.3 MiB/s" is 78 columns, it fits an 80-column terminal uncut
BYTE_BAR_WIDTH = 16


def short_label(ref: str, width: int = LABEL_WIDTH) -> str:
    return ref if len(ref) <= width else "…" + ref[-(width - 1):]


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """`[=========>          ]`: `width` cells between the brackets."""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    if filled >= width:
        return "[" + "=" * width + "]"
    return "[" + "=" * filled + ">" + " " * (width - filled - 1) + "]"


class StatusLine:
    """The mechanics every progress display shares. Live (a terminal): `show` redraws one line in place (at most
    every REDRAW seconds, cut to the width), `say` puts a permanent line above it. Plain: `show` writes a line
    when asked to (`force`) or LINE_EVERY seconds after the last one, `say` writes its line."""

    def __init__(self, stream: TextIO, *, live: bool | None = None, prefix: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self.prefix = prefix  # plain lines only: "contree-tui: " where the command's other notes have it
        self.clock = clock
        self._shown = ""
        self._shown_at = float("-inf")

    def show(self, text: str, *, force: bool = False) -> None:
        now = self.clock()
        if self.live:
            if text != self._shown and (force or now - self._shown_at >= REDRAW):
                self.stream.write(ERASE_LINE + self._fit(text))
                self._shown, self._shown_at = text, now
        elif force or now - self._shown_at >= LINE_EVERY:
            self.stream.write(f"{self.prefix}{text}\n")
            self._shown_at = now
        self.stream.flush()

    def say(self, line: str) -> None:
        self.clear()
        self.stream.write(f"{line}\n")
        self.stream.flush()

    def clear(self) -> None:
        """Before the command's last words: the live line goes (its final state is said by them)."""
        if self.live and self._shown:
            self.stream.write(ERASE_LINE)
            self._shown = ""
            self._shown_at = float("-inf")
        self.stream.flush()

    def delay_plain_lines(self) -> None:
        """The first plain line only after LINE_EVERY: a quick transfer prints none."""
        self._shown_at = self.clock()

    def _fit(self, text: str) -> str:
        try:
            width = os.get_terminal_size(self.stream.fileno()).columns or 80  # a fresh pty says 0
        except (OSError, ValueError):
            width = 80
        width -= 1  # the last column: some terminals wrap when it is written
        return text if len(text) <= width else text[: max(0, width - 1)] + "…"


# The engine's last log line of an import that did not succeed ("import failed: <error>", image_import.py's
# _finish): the command's own last line says the same reason, once is enough.
OUTCOME_LOGS = ("import failed: ", "import cancelled: ")


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
    """An import's progress (`contree-tui import`, `engine bootstrap debian`): on a terminal one live line plus
    the engine's log lines above it; elsewhere a line at the first event of each step (layers fetched in
    parallel interleave their events: a line per change of step would be a line per event), one every
    LINE_EVERY seconds in between, and each log line."""

    def __init__(self, stream: TextIO, label: str, *, live: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.line = StatusLine(stream, live=live, clock=clock)
        self.label = short_label(label)
        self._steps_said: set[str] = set()

    @property
    def live(self) -> bool:
        return self.line.live

    def update(self, progress: ImportProgress, log_line: str | None = None) -> None:
        if log_line is not None and not log_line.startswith(OUTCOME_LOGS):
            self.line.say(log_line)
        new_step = bool(progress.step) and progress.step not in self._steps_said
        self._steps_said.add(progress.step)
        if self.live or progress.step:  # (after a log line the live line was cleared: it redraws at once)
            self.line.show(progress_text(self.label, progress, bar=self.live), force=new_step)

    def close(self) -> None:
        self.line.clear()


class ByteProgress:
    """A byte count while a transfer runs (`export`): the bar when the total is known (an estimate: du bytes of
    the image, so never shown as finished before it is), the amount and the speed."""

    def __init__(self, out: TextIO, label: str, *, terminal: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.line = StatusLine(out, live=terminal, prefix="contree-tui: ", clock=clock)
        self.label = label
        self.clock = clock
        self.started = clock()
        self.done_bytes = 0
        if not self.line.live:
            self.line.delay_plain_lines()

    def update(self, done: int, total: int | None = None) -> None:
        self.done_bytes = done
        elapsed = max(self.clock() - self.started, 1e-6)
        parts = [self.label]
        if total:
            fraction = min(done / total, 0.99)
            parts += [progress_bar(fraction, BYTE_BAR_WIDTH), f"{fraction * 100:3.0f}%",
                      f"{human_size(done)} of ~{human_size(total)}"]
        else:
            parts.append(human_size(done))
        parts.append(f"{human_size(int(done / elapsed))}/s")
        self.line.show("  ".join(parts))

    def finish(self) -> None:
        """Clear a terminal's bar line (the caller prints the outcome)."""
        self.line.clear()


def sync_progress_text(label: str, status: SyncStatus) -> str:
    """`~/proj  sync  [=====>   ]  42%  4,200/10,000 files  1.2 MiB / 3.0 MiB`"""
    fraction = status.fraction
    if fraction is None:
        return f"{label}  scanning"
    return (f"{label}  sync  {progress_bar(fraction)}  {fraction * 100:3.0f}%  {status.done_files:,}/"
            f"{status.files:,} files  {human_size(status.done_bytes)} / {human_size(status.bytes)}")


class SyncProgressLine:
    """`contree-tui sync` on a terminal: the live line follows the syncer's status while it scans and uploads
    (a first sync of 10,000 files takes seconds, minutes against a distant Contree); in a pipe nothing is said
    until the command's own last line."""

    def __init__(self, stream: TextIO, label: str, status: Observable[SyncStatus], *,
                 live: bool | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.line = StatusLine(stream, live=live, clock=clock)
        self.label = short_label(label)
        self._unsubscribe = status.subscribe(self._show)

    def _show(self, status: SyncStatus) -> None:
        if self.line.live and status.phase is SyncPhase.SYNCING:
            done = status.files > 0 and status.done_files == status.files
            self.line.show(sync_progress_text(self.label, status), force=done or status.done_files == 0)

    def close(self) -> None:
        self._unsubscribe()
        self.line.clear()


def steps_progress_text(done: int, total: int, running: int, errors: int, elapsed: float) -> str:
    """`[=========>     ]  3/5 steps  1 running  0 errors  12.5s`: a pipeline's steps (`pipeline --headless`)."""
    fraction = done / total if total else 1.0
    return (f"{progress_bar(fraction)}  {done}/{total} steps  {running} running  {errors} "
            f"error{'' if errors == 1 else 's'}  {human_duration(elapsed)}")
