"""A function step's result record in an operation's output reaches every log view as `→ returned: VALUE`, a
META line (dimmed, as the TUI's own lines are): the buffer turns it at ingest, so the single log, the merged and
split logs (which draw from the buffers), search and a saved file all hold the readable line.

The real thing on the real engine (a function step's operation selected in the operations table) is
tests/pipeline/test_step_result_logs.py; these pin the buffer's part without an engine."""

from __future__ import annotations

from pathlib import Path

from contree_tui.client.step_result import RESULT_MARK
from contree_tui.tui.model import OutputBuffer, Stream
from contree_tui.tui.widgets.log_export import write_log
from contree_tui.tui.widgets.log_merge import MergedLog
from contree_tui.tui.widgets.log_rows import RowMap, Search

RECORD = RESULT_MARK + '{"json": {"b": 2, "a": 1}}'


def test_the_record_is_a_meta_line_after_the_functions_output_even_cut_across_chunks() -> None:
    buffer = OutputBuffer()
    buffer.feed(Stream.STDOUT, "hello\nno newline" + RECORD[:5])
    buffer.feed(Stream.STDOUT, RECORD[5:] + "\n")
    buffer.feed(Stream.STDERR, "warn\n")
    assert list(buffer) == [(Stream.STDOUT, "hello"), (Stream.STDOUT, "no newline"),
                            (Stream.META, '→ returned: {"a": 1, "b": 2}'), (Stream.STDERR, "warn")]


def test_search_merged_log_and_save_hold_the_readable_line(tmp_path: Path) -> None:
    buffer = OutputBuffer()
    buffer.feed(Stream.STDOUT, f"out\n{RECORD}\n")
    rows = RowMap()
    rows.reset(buffer, search=Search("returned"))
    assert rows.matches == [1]
    hidden = RowMap()
    hidden.reset(buffer, search=Search("contree-pipeline-result"))
    assert hidden.matches == []

    merged = MergedLog()
    merged.attach("3f2a9c1d-0000", buffer, label="step")
    merged.pull()
    assert merged.text_lines()[-1] == 'step │ → returned: {"a": 1, "b": 2}'

    saved = tmp_path / "op.log"
    write_log(saved, buffer.lines.texts)  # what the log box saves for one operation (LogView.text_lines)
    assert saved.read_text() == 'out\n→ returned: {"a": 1, "b": 2}\n'
