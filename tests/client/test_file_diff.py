"""The line diff of one file: the same hunks as `diff -u` (difflib.unified_diff) where both are unambiguous,
a diff that always turns the old lines into the new, side-by-side rows paired, and scattered changes in a long
file at patience-diff speed rather than SequenceMatcher's quadratic time."""

from __future__ import annotations

import difflib
import random
import time

from contree_tui.client.connection import Connection
from contree_tui.client.file_diff import DiffKind, FileDiff, RowTag, diff_file, diff_lines
from contree_tui.client.image_files import ImageFiles
from tests.client.wire import result_image, run_shell


def apply(old: list[str], diff: FileDiff) -> list[str]:
    out: list[str] = []
    pos = 0
    for hunk in diff.hunks:
        start = hunk.old_start - 1 if hunk.old_len else hunk.old_start
        out += old[pos:start]
        out += [text for tag, _o, _n, text in hunk.unified() if tag in (RowTag.EQUAL, RowTag.ADDED)]
        pos = start + hunk.old_len
    return out + old[pos:]


def test_a_one_line_change_reads_as_diff_u() -> None:
    old = ["alpha", "beta", "gamma", "delta", "epsilon"]
    new = ["alpha", "beta", "GAMMA", "delta", "epsilon", "zeta"]
    diff = diff_lines("/app/a.txt", old, new, old_size=31, new_size=36)
    expected = [line for line in difflib.unified_diff(old, new, "a/app/a.txt", "b/app/a.txt", lineterm="")]
    assert diff.unified_text("a/app/a.txt", "b/app/a.txt") == expected
    assert (diff.kind, diff.added, diff.removed) == (DiffKind.TEXT, 2, 1)
    rows = diff.hunks[0].rows
    assert [(r.tag, r.old, r.new) for r in rows if r.tag is not RowTag.EQUAL] == [
        (RowTag.CHANGED, "gamma", "GAMMA"), (RowTag.ADDED, None, "zeta")]


def test_random_edits_always_patch_old_into_new() -> None:
    rng = random.Random(12)
    for _ in range(2000):
        alphabet = "abcdefghijklmnop"[: rng.randint(2, 16)]
        old = [rng.choice(alphabet) for _ in range(rng.randint(0, 40))]
        new = list(old)
        for _ in range(rng.randint(0, 8)):
            k = rng.randint(0, len(new))
            roll = rng.random()
            if roll < 0.3 and new:
                del new[min(k, len(new) - 1)]
            elif roll < 0.6:
                new.insert(k, rng.choice("xyz" + alphabet))
            elif new:
                new[min(k, len(new) - 1)] = "q"
        diff = diff_lines("/p", old, new, old_size=None, new_size=None)
        assert apply(old, diff) == new, (old, new)
        assert diff.added - diff.removed == len(new) - len(old)
        assert bool(diff.hunks) == (old != new)


def test_scattered_changes_in_a_long_file_stay_fast() -> None:
    old = [f"line {i}" for i in range(20_000)]
    new = [line if i % 2 else line + " changed" for i, line in enumerate(old)]
    started = time.perf_counter()
    diff = diff_lines("/p", old, new, old_size=None, new_size=None)
    assert time.perf_counter() - started < 15  # SequenceMatcher alone: 128 s here
    assert (diff.added, diff.removed) == (10_000, 10_000)
    assert apply(old, diff) == new


async def test_a_file_past_the_cap_is_compared_by_size_without_being_fetched(connection: Connection) -> None:
    base = await connection.client.inspect_find_image_by_tag("busybox:latest")
    first = result_image(await run_shell(connection, base, "mkdir -p /w && seq 1 300000 > /w/big && "
                                                           "printf 'a\\nb\\n' > /w/small"))
    second = result_image(await run_shell(connection, first, "seq 2 300001 > /w/big && printf 'a\\nB\\n' > /w/small"))
    files = ImageFiles(connection)
    read: list[str] = []
    real_read_head = files.read_head

    async def counting(image: str, path: str, limit: int):  # type: ignore[no-untyped-def]
        read.append(path)
        return await real_read_head(image, path, limit)

    files.read_head = counting  # type: ignore[method-assign]
    big = await diff_file(files, first, second, "/w/big")
    assert big.kind is DiffKind.TOO_BIG and (big.old_size, big.new_size) == (1_988_895, 1_988_900)
    assert "past the 1.0 MiB a side" in big.summary and read == [], "sizes from the listing; nothing fetched"
    small = await diff_file(files, first, second, "/w/small")
    assert small.kind is DiffKind.TEXT and (small.added, small.removed) == (1, 1)
    added = await diff_file(files, None, second, "/w/small")
    assert [t.value + text for h in added.hunks for t, _o, _n, text in h.unified()] == ["+a", "+B"]
