"""The TUI's records without a screen: output split into lines per stream, bounded buffers, terminal
clean-up, the working position's rollback/forward history, the tree's parent/children index."""

from __future__ import annotations

from datetime import UTC, datetime

from contree_tui.tui.model import Lineage, OutputBuffer, Position, Snapshot, Stream, clean_line


def test_chunks_split_anywhere_become_lines_per_stream() -> None:
    buffer = OutputBuffer()
    buffer.feed(Stream.STDOUT, "hel")
    buffer.feed(Stream.STDERR, "warn")
    buffer.feed(Stream.STDOUT, "lo\nwor")
    buffer.feed(Stream.STDERR, "ing\n")
    assert buffer.lines == [(Stream.STDOUT, "hello"), (Stream.STDERR, "warning")]
    buffer.close()
    assert buffer.lines[-1] == (Stream.STDOUT, "wor"), "an unfinished last line is kept when the run ends"
    assert buffer.total == 3 and buffer.width == 7


def test_a_flood_keeps_the_newest_lines_and_counts_the_dropped() -> None:
    buffer = OutputBuffer(max_lines=1000)
    buffer.feed(Stream.STDOUT, "".join(f"{i}\n" for i in range(5000)))
    assert len(buffer.lines) <= 1000 and buffer.total == 5000
    assert buffer.lines[-1] == (Stream.STDOUT, "4999")
    assert buffer.dropped == 5000 - len(buffer.lines)


def test_lines_show_what_a_terminal_would() -> None:
    assert clean_line("10%\r50%\r100%") == "100%"
    assert clean_line("\x1b[1;31mred\x1b[0m plain") == "red plain"
    assert clean_line("a\tb") == "a       b"
    assert clean_line("bell\x07") == "bell\ufffd"


def test_rollback_and_forward_walk_the_history() -> None:
    position = Position("c")
    position.rollback("b")
    position.rollback("a")
    assert position.working == "a" and position.forward_target == "b"
    assert position.forward() == "b" and position.forward() == "c" and position.forward() is None
    position.rollback("b")
    position.move_to("x")
    assert not position.can_forward, "choosing another snapshot drops the forward history"


def test_lineage_children_oldest_first_and_ancestors_from_the_root() -> None:
    t = [datetime(2026, 1, 1, h, tzinfo=UTC) for h in range(4)]
    lineage = Lineage([Snapshot("root", None, "busybox:latest", t[0]), Snapshot("b", "root", None, t[2], "op-b"),
                       Snapshot("a", "root", None, t[1], "op-a"), Snapshot("c", "a", None, t[3], "op-c")])
    assert [s.uuid for s in lineage.roots()] == ["root"]
    assert [s.uuid for s in lineage.children_of("root")] == ["a", "b"]
    assert lineage.ancestors("c") == ["root", "a"]
    assert lineage.by_tag("busybox:latest") is lineage.get("root")
