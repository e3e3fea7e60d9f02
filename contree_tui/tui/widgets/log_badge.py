"""The "+N new lines · G follows" badge, drawn by the log view over its own last row while follow is paused.

It was a docked Label: showing it, hiding it (6 of bench/bench_tui_logs.py's 8 keys pause or resume follow)
and widening it as the count gained a digit each laid the whole screen out, about twice a repaint's cost and a
third of the frames of the bench's key phase. Drawn over a row, pausing, resuming and a growing count repaint
that one row. It looks as the Label did: two cells in, one cell of padding each side, on $warning.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

MARGIN = 2  # cells left of the badge (the Label's `margin: 0 0 0 2`)


def badge_text(following: bool, new_lines: int) -> str | None:
    """What the badge says, or None while following (no badge)."""
    if following:
        return None
    news = f"+{new_lines} new line{'s' if new_lines != 1 else ''}" if new_lines else "paused"
    return f" {news} · G follows "


def with_badge(row: Strip, text: str, style: Style, width: int) -> Strip:
    """`row` (`width` cells) with the badge drawn over it from MARGIN cells in (cut short on a narrow view)."""
    end = min(width, MARGIN + len(text))
    if end <= MARGIN:
        return row
    badge = Strip([Segment(text[:end - MARGIN], style)])
    return Strip.join([row.crop(0, MARGIN), badge, row.crop(end, width)])
