"""`:diff` words that name no snapshot: the toast offers the shell's diff with the words the user typed."""

from __future__ import annotations

import pytest

from contree_tui.tui import verbs as v
from contree_tui.tui.screens.diff_verbs import shell_diff_line


@pytest.mark.parametrize(("line", "hint"), [
    (":diff notes.txt", "!diff notes.txt"),  # was `!diff notes.txt .`: the `.` the parser fills in for B
    ("diff a.txt b.txt", "!diff a.txt b.txt"),
    (":diff 'my file' other", "!diff 'my file' other"),
])
def test_the_hint_repeats_the_words_given(line: str, hint: str) -> None:
    verb = v.parse_line(line)
    assert isinstance(verb, v.Diff)
    assert shell_diff_line(verb) == hint
