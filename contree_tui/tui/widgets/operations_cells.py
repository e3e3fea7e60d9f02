"""What the operations table writes in its cells, without Textual: durations, CPU, memory, an import's bar,
which columns fit a pane, and a command cut so that it still differs from its siblings'.

Parallel runs usually share a long head (`for i in $(seq 1 50); do echo a$i …` and `… echo b$i …`): cutting
every command at the column's end showed three identical cells. `command_cell` keeps the first words, drops
the shared middle and shows from the word where the command departs from the most similar other one.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

from rich.cells import cell_len, set_cell_size

from contree_tui.client.sizes import human_duration

# The command goes last: it is the one column whose width is what is left of the pane.
STATUS_WIDTH = 11
COLUMNS = (("status", "status", STATUS_WIDTH), ("images", "image → result", 19), ("exit", "exit", 4),
           ("duration", "time", 7), ("cpu", "cpu", 5), ("memory", "mem", 5), ("command", "command", None))
PENDING = "—"  # CPU and memory come with the process's exit (its rusage): none while it runs
COMMAND_WIDTH = 40  # before the table knows its width (not laid out yet)
# When the pane is narrow (at 80 columns it is ~42 cells: the fixed columns alone took 65), columns go in this
# order until the command has the cells it needs (at least COMMAND_MIN): status and command tell runs apart.
DROP_ORDER = ("exit", "memory", "cpu", "images", "duration")  # exit first: the status says `✗ exit 3`
COMMAND_MIN = 24
# What a command that shares a long head with another needs: its first words (HEAD cells at most), "…", and
# DISTINCT cells from where it departs (`for i in…a$i; sleep 0.1; done`); past COMMAND_WANT no column gives way.
# A plain cut at the end is kept while it shows SHOWN_AFTER cells past that point (`cd /app && make && ls -…`).
HEAD = 12
DISTINCT = 20
SHOWN_AFTER = 6
COMMAND_WANT = 40
CELL_PADDING = 2  # DataTable's cell_padding (1) on each side of every column
SCROLLBAR = 1  # app.tcss: scrollbar-size-vertical: 1 (kept free, so a scrollbar never hides the last cell)
IMPORT_BAR = 12  # cells of an import's bar in the image column (19 wide): the bar, a space, "100%"
ELLIPSIS = "…"


def progress_cell(fraction: float, width: int = IMPORT_BAR) -> str:
    """`███████░░░░░  58%`: bytes an import fetched of all it fetches."""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled) + f" {fraction * 100:3.0f}%"


def import_label(command: str) -> str:
    """An import's command cell, its tag first: `import REF as TAG` (records.import_command) reads
    `import TAG ← REF`. At 160 columns the cell shows ~21 cells, and a long path hid the tag it makes."""
    one_line = " ".join(command.split())
    ref, found, tag = one_line.removeprefix("import ").rpartition(" as ")
    return f"import {tag} ← {ref}" if found and ref and tag and " " not in tag else one_line


def format_duration(seconds: float | None) -> str:
    return human_duration(seconds)  # client/sizes.py: the CLI's `ops` shows the same


def format_cpu(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.2f}s" if seconds < 10 else format_duration(seconds)


def format_memory(kilobytes: int | None) -> str:
    """Peak RSS as getrusage reports it on Linux: kilobytes."""
    if kilobytes is None:
        return ""
    size = float(kilobytes)
    for unit in ("K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if size >= 10 or unit == "K" else f"{size:.1f}{unit}"
        size /= 1024
    raise AssertionError("unreachable")


def fixed_width(columns: Iterable[str]) -> int:
    """Cells the shown columns other than the command take, padding included."""
    widths = {key: width for key, _label, width in COLUMNS if width is not None}
    return sum(widths[key] + CELL_PADDING for key in columns if key in widths)


def fitting_columns(width: int, need: int = COMMAND_MIN) -> tuple[str, ...]:
    """The columns shown in a pane `width` cells wide: all of them while the command keeps `need` cells (at
    least COMMAND_MIN), else fewer, in DROP_ORDER (status and command always)."""
    need = max(COMMAND_MIN, need)
    shown = [key for key, _label, _width in COLUMNS]
    for key in DROP_ORDER:
        if width <= 0 or command_room(width, shown) >= need:
            break
        shown.remove(key)
    return tuple(shown)


def command_room(width: int, columns: Iterable[str]) -> int:
    """The command column's cells in a pane `width` cells wide beside `columns`."""
    return width - SCROLLBAR - fixed_width(columns) - CELL_PADDING


def one_line(command: str) -> str:
    return " ".join(command.split())


def departures(commands: Iterable[str]) -> dict[str, int]:
    """For each (one-line) command, where it departs from the most similar other one: the length of the
    longest prefix it shares with any other (0 when it shares none; its length when another is the same)."""
    ordered = sorted(set(commands))
    shared = dict.fromkeys(ordered, 0)
    for before, after in pairwise(ordered):  # the most similar is a neighbour in order
        common = _common_prefix(before, after)
        shared[before] = max(shared[before], common)
        shared[after] = max(shared[after], common)
    return shared


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _head(text: str, limit: int) -> str:
    """The first words of `text` within `limit` cells (cut inside the first word if it alone is longer)."""
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[:space].rstrip() if space > 0 and limit < len(text) else cut


def _fit(text: str, width: int) -> str:
    """`text` in at most `width` cells, its end replaced by "…" when cut."""
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(0, width - 1)) + ELLIPSIS if width > 0 else ""


def _cut_shows_it(text: str, departs: int, width: int) -> bool:
    """Whether `text` cut at its end to `width` cells still shows where it departs from its sibling (or
    nothing tells them apart: the same command)."""
    return departs >= len(text) or departs + min(SHOWN_AFTER, len(text) - departs) <= width - 1


def command_cell(command: str, width: int, departs: int = 0) -> str:
    """The command in `width` cells; when its end must go and the part that tells it from a sibling's
    (from `departs`, the length of the prefix they share) would go with it, the shared middle goes instead."""
    text = one_line(command)
    if cell_len(text) <= width:
        return text
    if _cut_shows_it(text, departs, width) or width < 8:
        return _fit(text, width)  # nothing tells it apart, or what does is on screen anyway
    start = text.rfind(" ", 0, departs) + 1  # from the start of the word where it departs
    head = _head(text, min(HEAD, start - 1, width // 3))
    if not head:
        return _fit(text, width)
    return head + ELLIPSIS + _fit(text[start:], width - cell_len(head) - 1)


def command_need(command: str, departs: int = 0) -> int:
    """Cells `command_cell` wants for this command: all of it when short, else its head and DISTINCT cells
    from where it departs from a sibling (at most COMMAND_WANT)."""
    text = one_line(command)
    if _cut_shows_it(text, departs, COMMAND_MIN):
        return min(cell_len(text), COMMAND_MIN)
    start = text.rfind(" ", 0, departs) + 1
    head = _head(text, min(HEAD, start - 1))
    return min(COMMAND_WANT, cell_len(head) + 1 + min(cell_len(text) - start, DISTINCT))


def images_cell(image: str | None, result: str | None, disposable: bool) -> str:
    """`source → result` in the images column (19 cells): a run that changed nothing says `no change` (the log
    footer's words) in 18 cells; `(no change)` took 20 and was cut to `3e074f73 (no change`; a disposable run
    says so in 19."""
    source = (image or "")[:8]
    if disposable:
        return f"{source} disposable"  # `→ disposable` took 21 cells
    if result and result == image:
        return f"{source} no change"
    return f"{source} → {result[:8]}" if result else source
