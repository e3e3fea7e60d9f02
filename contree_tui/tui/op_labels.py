"""How a person names an operation, and the colour it keeps: the merged log's line prefixes, the split view's
pane titles and (for the operations table) the part of a command that tells parallel runs apart.

Three runs of `:parallel` usually share all but a word: `for i in $(seq 1 50); do echo alpha $i; sleep 0.1;
done` and its beta and gamma twins are cut to the same 40-cell prefix, and their uuids mean nothing to anyone.
What a person recognises is the word that differs (`…echo alpha…`), or a tag when the run's snapshot has one.
No Textual here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from contree_tui.tui.model import Operation

LABEL_WIDTH = 20  # cells: the merged log's prefix; at 80 columns a wider one leaves too little for the line
CONTEXT_BELOW = 6  # a differing part shorter than this (`a`, `42`) gets the word before it (`echo a`)
COLOUR_SLOTS = 8  # distinct branch colours (log-view--op-0 … op-7, split-logs.tcss): more runs reuse them
ELLIPSIS = "…"


def short_form(command: str | None, width: int = LABEL_WIDTH) -> str:
    """The command on one line, cut to `width` cells with an ellipsis."""
    one_line = " ".join((command or "").split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + ELLIPSIS


def distinct_parts(commands: Sequence[str], width: int = LABEL_WIDTH) -> list[str]:
    """Each command's words that the others do not share (the common leading and trailing words dropped, an
    ellipsis where they were), cut to `width`; a lone command, or one with nothing of its own, in short form.
    Identical commands get `#1`, `#2`… in their order, so no two labels are the same."""
    whole = [short_form(command, width) for command in commands]
    if len(set(whole)) == len(whole) and not any(label.endswith(ELLIPSIS) for label in whole):
        return whole  # each fits and they differ: the whole command is what a person recognises best
    if len({" ".join(command.split()) for command in commands}) < 2:  # one command, or the same one again
        return _numbered(whole, width)
    words = [command.split() for command in commands]
    shortest = min(len(w) for w in words)
    lead = 0
    while lead < shortest and len({w[lead] for w in words}) == 1:
        lead += 1
    trail = 0
    while trail < shortest - lead and len({w[len(w) - 1 - trail] for w in words}) == 1:
        trail += 1
    # `a` alone says little, `echo a` says what it is: the word before the differing ones, for all of them
    # alike (so `--lr 0.1` and `--lr 0.001 --epochs 3` line up)
    shortest_part = min(len(" ".join(w[lead:len(w) - trail])) for w in words)
    if shortest_part < CONTEXT_BELOW and lead > 0:
        lead -= 1
    labels = []
    for command, own in zip(commands, words, strict=True):
        start, end = lead, len(own) - trail
        if start >= end:  # all of it shared (`echo a` beside `echo a b`): its short form
            labels.append(short_form(command, width))
            continue
        # quotes cut by the word split (`echo "alpha $i"` differs in `"alpha`) say nothing to a reader
        middle = " ".join(word for word in (w.strip("\"'") for w in own[start:end]) if word) or own[start]
        before = ELLIPSIS if start > 0 else ""
        after = ELLIPSIS if end < len(own) else ""
        room = width - len(before) - len(after)
        if len(middle) > room:
            middle, after = middle[: max(1, width - len(before) - 1)], ELLIPSIS
        labels.append(before + middle + after)
    return _numbered(labels, width)


def _numbered(labels: list[str], width: int) -> list[str]:
    """The same label twice: `#n` after each (the n-th of that label), cutting the label to make room."""
    counts = {label: labels.count(label) for label in labels}
    seen: dict[str, int] = {}
    numbered = []
    for label in labels:
        if counts[label] == 1:
            numbered.append(label)
            continue
        seen[label] = seen.get(label, 0) + 1
        suffix = f" #{seen[label]}"
        body = label if len(label) + len(suffix) <= width else label[: width - len(suffix) - 1] + ELLIPSIS
        numbered.append(body + suffix)
    return numbered


def operation_labels(ops: Sequence[Operation], *, tag_of: Callable[[str], str | None] | None = None,
                     width: int = LABEL_WIDTH) -> dict[str, str]:
    """How a person names each of these operations, seen together (uuid → label): the tag of the snapshot it
    made when it has one, else what tells its command apart from the others' (an import by what it imports)."""
    # Runs of different programs (a `while sleep 1` beside three `./train.sh --lr …`) share nothing worth
    # cutting: what sets a run apart is looked for among the runs of the same program (first word) only.
    programs: dict[str, list[int]] = {}
    for at, op in enumerate(ops):
        programs.setdefault(next(iter(op.command.split()), ""), []).append(at)
    parts = [""] * len(ops)
    for members in programs.values():
        for at, part in zip(members, distinct_parts([ops[at].command for at in members], width), strict=True):
            parts[at] = part
    labels = {}
    for op, part in zip(ops, parts, strict=True):
        made = op.result if op.result and op.result != op.image else None  # no change: the result is its image
        tag = tag_of(made) if tag_of is not None and made else None
        labels[op.uuid] = short_form(tag.split(", ")[0], width) if tag else part
    return labels


class ColourSlots:
    """Which of COLOUR_SLOTS colours an operation is drawn in, the same one for the whole session: the first
    operation seen gets slot 0, the next slot 1, and so on round, so up to 8 runs side by side all differ."""

    def __init__(self, slots: int = COLOUR_SLOTS) -> None:
        self.slots = slots
        self._given: dict[str, int] = {}

    def slot(self, key: str) -> int:
        given = self._given.get(key)
        if given is None:
            given = self._given[key] = len(self._given) % self.slots
        return given
