"""A byte count shown while a transfer runs: a redrawn bar on a terminal, a plain line every few seconds
otherwise (a log or a CI job gets lines it can read, not carriage returns)."""

from __future__ import annotations

import time
from typing import TextIO

from contree_tui.client.render import human_size

BAR = 24
REDRAW = 0.1  # seconds between redraws of a terminal's bar: smooth enough, and ~nothing of the CPU
LINE_EVERY = 5.0  # seconds between plain lines


class ByteProgress:
    def __init__(self, out: TextIO, label: str, *, terminal: bool | None = None) -> None:
        self.out = out
        self.label = label
        self.terminal = out.isatty() if terminal is None else terminal
        self.started = time.monotonic()
        # a terminal's bar shows at once; plain lines start after LINE_EVERY (a quick transfer prints none)
        self._shown_at = float("-inf") if self.terminal else self.started
        self._width = 0
        self.done_bytes = 0

    def update(self, done: int, total: int | None = None) -> None:
        self.done_bytes = done
        now = time.monotonic()
        if now - self._shown_at < (REDRAW if self.terminal else LINE_EVERY):
            return
        self._shown_at = now
        self._show(done, total, now)

    def _show(self, done: int, total: int | None, now: float) -> None:
        elapsed = max(now - self.started, 1e-6)
        speed = f"{human_size(int(done / elapsed))}/s"
        if total:
            # an estimate (du bytes of the image), so never shown as finished before it is
            fraction = min(done / total, 0.99)
            filled = int(fraction * BAR)
            amount = f"{human_size(done)} of ~{human_size(total)}"
            bar = f"[{'#' * filled}{'.' * (BAR - filled)}] {fraction:4.0%} "
        else:
            amount, bar = human_size(done), ""
        text = f"{self.label} {bar}{amount}  {speed}"
        if self.terminal:
            pad = max(0, self._width - len(text))
            self.out.write(f"\r{text}{' ' * pad}")
            self._width = len(text)
        else:
            self.out.write(f"contree-tui: {text}\n")
        self.out.flush()

    def finish(self) -> None:
        """Clear a terminal's bar line (the caller prints the outcome)."""
        if self.terminal and self._width:
            self.out.write(f"\r{' ' * self._width}\r")
            self.out.flush()
