"""Plain-text renderings for the headless CLI: the image tree, operation rows, positions, history.

No colours and no terminal queries: the output is meant for pipes and scripts as much as for eyes (`--json`
gives the records themselves).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from contree_tui.client.lineage import LineageTree
from contree_tui.client.outcome_words import NO_CHANGE, outcome_words
from contree_tui.client.position import HistoryEntry
from contree_tui.client.records import ImageRecord, OperationRecord
from contree_tui.client.sizes import human_duration as duration_text

COMMAND_WIDTH = 60


def human_duration(seconds: float | None) -> str:
    return duration_text(seconds) or "-"


def local_time(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def clip(text: str | None, width: int = COMMAND_WIDTH) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"


def image_label(image: ImageRecord | None, uuid: str) -> str:
    if image is None:
        return uuid
    return f"{uuid} ({', '.join(image.tags)})" if image.tags else uuid


def tree_lines(tree: LineageTree, position: str | None) -> list[str]:
    """The forest, one image a line: `*` marks the working snapshot; each line shows the short uuid, tags,
    creation time and the command that made it (when this client knows it)."""
    lines: list[str] = []
    for root in tree.roots:
        _visit_iteratively(tree, root, position, lines)
    return lines


def _visit_iteratively(tree: LineageTree, root: str, position: str | None, lines: list[str]) -> None:
    """Depth first without recursion: a chain of 10,000 runs is a legitimate tree."""
    stack: list[tuple[str, str, bool, bool]] = [(root, "", True, True)]
    seen: set[str] = set()
    while stack:
        uuid, prefix, last, top = stack.pop()
        if uuid in seen or uuid not in tree.images:
            continue
        seen.add(uuid)
        image = tree.images[uuid]
        branch = "" if top else ("└─ " if last else "├─ ")
        op = tree.producing_operation(uuid)
        tags = f" [{', '.join(image.tags)}]" if image.tags else ""
        command = f"  $ {clip(op.command)}" if op is not None and op.command else ""
        marker = "*" if uuid == position else " "
        lines.append(f"{marker} {prefix}{branch}{image.short}{tags}  {local_time(image.created_at)}{command}")
        children = [c for c in image.children if c in tree.images]
        below = prefix if top else prefix + ("   " if last else "│  ")
        for i in reversed(range(len(children))):
            stack.append((children[i], below, i == len(children) - 1, False))


def operation_header() -> str:
    return f"{'OPERATION':<10}{'OUTCOME':<11}{'EXIT':>5}  {'DURATION':>9}  {'SOURCE':<9}{'RESULT':<10}  COMMAND"


def operation_line(op: OperationRecord) -> str:
    exit_code = "-" if op.exit_code is None else str(op.shell_exit_code())
    source = op.image_uuid[:8] if op.image_uuid else "-"
    if op.result_image_uuid is None:
        result = "-"
    elif op.result_image_uuid == op.image_uuid:
        result = NO_CHANGE
    else:
        result = op.result_image_uuid[:8]
    what = op.command if op.kind == "instance" else f"import{': ' + op.error if op.error else ''}"
    note = f"  ({clip(op.error, 40)})" if op.error and op.kind == "instance" else ""
    words = outcome_words(op.status, op.shell_exit_code(), op.timed_out)  # the TUI's words (tui/outcome.py)
    return (f"{op.short:<10}{words:<11}{exit_code:>5}  {human_duration(op.duration):>9}  "
            f"{source:<9}{result:<10}  {clip(what)}{note}")


def history_lines(entries: Iterable[HistoryEntry]) -> list[str]:
    lines = []
    for e in entries:
        image = e.image[:8] if e.image else "-"
        move = f"{e.previous[:8] if e.previous else '-'} -> {image}" if e.moved else f"at {image}"
        detail = ""
        if e.action == "run":
            code = "" if e.exit_code is None else f" [exit {e.exit_code}]"
            detail = f"  $ {clip(e.note)}{code}"
        elif e.note and e.action in ("set", "jump"):
            detail = f"  {e.note}"
        lines.append(f"{e.id:>5}  {local_time(e.at)}  {e.action:<8}  {move:<20}{detail}")
    return lines


def run_result_line(status: str, source: str, result: str | None) -> str:
    """`engine run`'s last stderr line: a new image by its whole uuid (to copy into the next command); a run
    that changed nothing in the TUI's words, since its "result" is the source image and read as a new one."""
    if result is None:
        return f"{status} · no result image"  # disposable, or the operation failed
    if result == source:
        return f"{status} · {NO_CHANGE} (still {source[:8]})"
    return f"{status} result image: {result}"
