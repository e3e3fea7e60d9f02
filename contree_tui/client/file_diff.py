"""The contents of one file in two images, compared line by line: hunks of a unified diff, with line numbers on
both sides (what a side-by-side view pairs up), or — for a binary file, or one past the read cap — its sizes,
old → new. Contents come through the inspect API's download (ImageFiles.read_head), at most DIFF_LIMIT bytes a
side: a file is never fetched whole to learn it is too big to show (its size is in the cached listing).

The standard library's difflib, not a dependency, does the line matching, with one guard: SequenceMatcher
alone is quadratic when changes are scattered (20,000 lines with every other one edited: 128 s, measured),
so lines that occur once in each side are matched first, patience-diff style (git's --patience: a longest
increasing subsequence, O(n log n); the same file: 0.7 s), and SequenceMatcher only matches the small gaps
between those anchors (a gap past GAP_CELLS is shown replaced whole). The result is printed as `diff -u`
prints it (checked against difflib.unified_diff in the tests). It runs in a thread, off the UI's loop.
No Textual here: the detail view and the headless CLI both render it.
"""

from __future__ import annotations

import asyncio
import bisect
import difflib
import enum
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from contree_tui.client.image_files import Entry, FileHead, ImageFiles, parent_dir

DIFF_LIMIT = 1 << 20  # bytes fetched a side; past it, sizes only (a 1 MiB text is ~20,000 lines already)
CONTEXT = 3  # unchanged lines around each change, as `diff -u`
BINARY_SNIFF = 8192  # git's rule: a NUL byte in the first 8 KiB makes a file binary
GAP_CELLS = 1_000_000  # old x new lines of a gap SequenceMatcher matches (~0.5 s at worst, measured)


class DiffKind(enum.Enum):
    TEXT = "text"
    BINARY = "binary"
    TOO_BIG = "too big"
    NOT_FILE = "not a file"


class RowTag(enum.Enum):
    EQUAL = " "
    REMOVED = "-"
    ADDED = "+"
    CHANGED = "~"  # side by side: an old line and the new line that replaced it


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a side-by-side view: the old side, the new side (either may be absent)."""

    tag: RowTag
    old_no: int | None
    old: str | None
    new_no: int | None
    new: str | None


@dataclass(frozen=True, slots=True)
class Hunk:
    old_start: int  # 1-based, as in `@@ -old_start,old_len +new_start,new_len @@`
    old_len: int
    new_start: int
    new_len: int
    rows: tuple[Row, ...]

    @property
    def header(self) -> str:
        return f"@@ -{_range(self.old_start, self.old_len)} +{_range(self.new_start, self.new_len)} @@"

    def unified(self) -> Iterator[tuple[RowTag, int | None, int | None, str]]:
        """The hunk as `diff -u` lists it: each changed run's old lines, then its new ones."""
        run: list[Row] = []
        for row in (*self.rows, None):
            if row is not None and row.tag is not RowTag.EQUAL:
                run.append(row)
                continue
            yield from ((RowTag.REMOVED, r.old_no, None, r.old) for r in run if r.old is not None)
            yield from ((RowTag.ADDED, None, r.new_no, r.new) for r in run if r.new is not None)
            run = []
            if row is not None:
                yield RowTag.EQUAL, row.old_no, row.new_no, row.old or ""


@dataclass(frozen=True, slots=True)
class FileDiff:
    path: str
    kind: DiffKind
    old_size: int | None  # None: absent on that side
    new_size: int | None
    hunks: tuple[Hunk, ...] = ()
    added: int = 0  # lines
    removed: int = 0

    @property
    def sizes(self) -> str:
        """`12 B → 40 B`, `absent → 4.0 KiB`."""
        return f"{_size(self.old_size)} → {_size(self.new_size)}"

    @property
    def summary(self) -> str:
        if self.kind is DiffKind.TEXT:
            if not self.hunks:
                return "same content"
            return f"+{self.added} -{self.removed} lines"
        if self.kind is DiffKind.TOO_BIG:
            return f"{self.sizes} (past the {_size(DIFF_LIMIT)} a side a diff reads: sizes only)"
        return f"{self.kind.value}: {self.sizes}"

    def unified_text(self, old_name: str, new_name: str) -> list[str]:
        """The diff as `diff -u` prints it, under `--- old_name` / `+++ new_name` (`a/etc/x`, `/dev/null`)."""
        if self.kind is not DiffKind.TEXT:
            return [f"{self.path}: {self.summary}"]
        if not self.hunks:
            return []
        lines = [f"--- {old_name}", f"+++ {new_name}"]
        for hunk in self.hunks:
            lines.append(hunk.header)
            lines += [f"{tag.value}{text}" for tag, _old, _new, text in hunk.unified()]
        return lines


def _range(start: int, length: int) -> str:
    """A hunk header's range as `diff -u` writes it: `4` for one line, `4,3`, `3,0` for none."""
    return str(start) if length == 1 else f"{start},{length}"


def _size(size: int | None) -> str:
    if size is None:
        return "absent"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def split_lines(data: bytes) -> list[str]:
    """Text lines without their terminators (undecodable bytes as U+FFFD: shown, never a crash)."""
    return data.decode("utf-8", errors="replace").splitlines()


Opcode = tuple[str, int, int, int, int]  # difflib's: tag, i1, i2, j1, j2


def _matches(a: Sequence[str], b: Sequence[str], alo: int, ahi: int, blo: int, bhi: int,
             out: list[tuple[int, int]]) -> None:
    """Append the matched line pairs (i, j) of a[alo:ahi] and b[blo:bhi], in order."""
    while alo < ahi and blo < bhi and a[alo] == b[blo]:  # the common head
        out.append((alo, blo))
        alo, blo = alo + 1, blo + 1
    tail: list[tuple[int, int]] = []
    while alo < ahi and blo < bhi and a[ahi - 1] == b[bhi - 1]:  # the common tail
        ahi, bhi = ahi - 1, bhi - 1
        tail.append((ahi, bhi))
    if alo < ahi and blo < bhi:
        anchors = _unique_anchors(a, b, alo, ahi, blo, bhi)
        if anchors:
            i0, j0 = alo, blo
            for i, j in anchors:
                _matches(a, b, i0, i, j0, j, out)
                out.append((i, j))
                i0, j0 = i + 1, j + 1
            _matches(a, b, i0, ahi, j0, bhi, out)
        elif (ahi - alo) * (bhi - blo) <= GAP_CELLS:
            matcher = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
            for block in matcher.get_matching_blocks():
                out += [(alo + block.a + k, blo + block.b + k) for k in range(block.size)]
    out += reversed(tail)


def _unique_anchors(a: Sequence[str], b: Sequence[str], alo: int, ahi: int, blo: int,
                    bhi: int) -> list[tuple[int, int]]:
    """Lines found exactly once in each range, the longest run of them in the same order on both sides."""
    in_a, in_b = Counter(a[alo:ahi]), Counter(b[blo:bhi])
    where_b = {b[j]: j for j in range(blo, bhi) if in_b[b[j]] == 1}
    pairs = [(i, where_b[a[i]]) for i in range(alo, ahi) if in_a[a[i]] == 1 and a[i] in where_b]
    if not pairs:
        return []
    # longest increasing subsequence of the j's (patience sorting), remembering each pile top's predecessor
    tops: list[int] = []  # j of each pile's top
    top_index: list[int] = []  # index into pairs of each pile's top
    before: list[int] = [-1] * len(pairs)
    for n, (_i, j) in enumerate(pairs):
        pile = bisect.bisect_left(tops, j)
        if pile == len(tops):
            tops.append(j)
            top_index.append(n)
        else:
            tops[pile], top_index[pile] = j, n
        before[n] = top_index[pile - 1] if pile else -1
    chain: list[tuple[int, int]] = []
    n = top_index[-1]
    while n != -1:
        chain.append(pairs[n])
        n = before[n]
    return chain[::-1]


def _opcodes(matches: list[tuple[int, int]], len_a: int, len_b: int) -> list[Opcode]:
    """difflib-style opcodes from the matched pairs."""
    codes: list[Opcode] = []

    def gap(i: int, mi: int, j: int, mj: int) -> None:
        if i < mi or j < mj:
            codes.append(("replace" if i < mi and j < mj else "delete" if i < mi else "insert", i, mi, j, mj))

    i = j = 0
    for mi, mj in matches:
        gap(i, mi, j, mj)
        if codes and codes[-1][0] == "equal" and codes[-1][2] == mi and codes[-1][4] == mj:
            codes[-1] = ("equal", codes[-1][1], mi + 1, codes[-1][3], mj + 1)
        else:
            codes.append(("equal", mi, mi + 1, mj, mj + 1))
        i, j = mi + 1, mj + 1
    gap(i, len_a, j, len_b)
    return codes


def _grouped(codes: list[Opcode], context: int) -> Iterator[list[Opcode]]:
    """Hunks: the changes with up to `context` equal lines around each (difflib's get_grouped_opcodes)."""
    if not codes:
        codes = [("equal", 0, 1, 0, 1)]
    if codes[0][0] == "equal":
        _tag, i1, i2, j1, j2 = codes[0]
        codes[0] = ("equal", max(i1, i2 - context), i2, max(j1, j2 - context), j2)
    if codes[-1][0] == "equal":
        _tag, i1, i2, j1, j2 = codes[-1]
        codes[-1] = ("equal", i1, min(i2, i1 + context), j1, min(j2, j1 + context))
    span = context + context
    group: list[Opcode] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > span:  # a long unchanged run ends one hunk and starts the next
            group.append((tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context)))
            yield group
            group = []
            i1, j1 = max(i1, i2 - context), max(j1, j2 - context)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        yield group


def diff_lines(path: str, old: list[str], new: list[str], *, old_size: int | None, new_size: int | None,
               context: int = CONTEXT) -> FileDiff:
    """Hunks of the change from `old` to `new`, each replaced run paired line by line for a side-by-side view."""
    matches: list[tuple[int, int]] = []
    _matches(old, new, 0, len(old), 0, len(new), matches)
    hunks: list[Hunk] = []
    added = removed = 0
    for group in _grouped(_opcodes(matches, len(old), len(new)), context):
        rows: list[Row] = []
        for op, i1, i2, j1, j2 in group:
            if op == "equal":
                rows += [Row(RowTag.EQUAL, i + 1, old[i], j + 1, new[j])
                         for i, j in zip(range(i1, i2), range(j1, j2), strict=True)]
                continue
            removed += i2 - i1
            added += j2 - j1
            for k in range(max(i2 - i1, j2 - j1)):
                i, j = i1 + k, j1 + k
                has_old, has_new = i < i2, j < j2
                tag = RowTag.CHANGED if has_old and has_new else RowTag.REMOVED if has_old else RowTag.ADDED
                rows.append(Row(tag, i + 1 if has_old else None, old[i] if has_old else None,
                                j + 1 if has_new else None, new[j] if has_new else None))
        first, last = group[0], group[-1]
        old_len, new_len = last[2] - first[1], last[4] - first[3]
        # `diff -u` numbers an empty side by the line before it
        hunks.append(Hunk(first[1] + 1 if old_len else first[1], old_len, first[3] + 1 if new_len else first[3],
                          new_len, tuple(rows)))
    return FileDiff(path, DiffKind.TEXT, old_size, new_size, tuple(hunks), added, removed)


async def _entry(files: ImageFiles, image: str | None, path: str) -> Entry | None:
    if image is None:
        return None
    entries = await files.list_dir(image, parent_dir(path))  # cached by the snapshot diff's walk
    return next((e for e in entries if e.path == path), None)


async def diff_file(files: ImageFiles, old_image: str | None, new_image: str | None, path: str, *,
                    limit: int = DIFF_LIMIT, context: int = CONTEXT) -> FileDiff:
    """`path` in `old_image` against `path` in `new_image` (None, or a path absent there: that side is empty,
    an addition or a removal)."""
    before, after = await asyncio.gather(_entry(files, old_image, path), _entry(files, new_image, path))
    old_size = before.size if before is not None else None
    new_size = after.size if after is not None else None
    if any(e is not None and e.kind != "file" for e in (before, after)):
        return FileDiff(path, DiffKind.NOT_FILE, old_size, new_size)
    if max(old_size or 0, new_size or 0) > limit:
        return FileDiff(path, DiffKind.TOO_BIG, old_size, new_size)

    async def head(image: str | None, entry: Entry | None) -> FileHead:
        if image is None or entry is None:
            return FileHead(b"", False)
        return await files.read_head(image, path, limit)

    old, new = await asyncio.gather(head(old_image, before), head(new_image, after))
    if old.truncated or new.truncated:  # grew past the cap since it was listed
        return FileDiff(path, DiffKind.TOO_BIG, old_size, new_size)
    if b"\0" in old.data[:BINARY_SNIFF] or b"\0" in new.data[:BINARY_SNIFF]:
        return FileDiff(path, DiffKind.BINARY, old_size, new_size)
    return await asyncio.to_thread(diff_lines, path, split_lines(old.data), split_lines(new.data),
                                   old_size=old_size, new_size=new_size, context=context)
