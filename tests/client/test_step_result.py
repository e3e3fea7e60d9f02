"""A function step's result record (the runner's `\\x1e@contree-pipeline-result JSON` line) read as
`→ returned: VALUE`: per line for the TUI's buffers, and as a byte stream for `contree-tui logs`, whose chunks
may cut the record anywhere."""

from __future__ import annotations

import json

from contree_tui.client.step_result import (
    RESULT_MARK,
    RETURNED,
    ReadableStdout,
    readable_lines,
    split_marked_line,
)


def record(payload: object) -> str:
    return RESULT_MARK + json.dumps(payload)


def test_a_record_reads_as_the_returned_value_json_with_sorted_keys_or_the_repr() -> None:
    assert split_marked_line(record({"json": {"b": 2, "a": [1, None]}})) == ("", RETURNED + '{"a": [1, null], "b": 2}')
    assert split_marked_line(record({"repr": "<Thing 3>"})) == ("", "→ returned: <Thing 3>")
    assert readable_lines("abc" + record({"json": 7})) == ["abc", "→ returned: 7"]  # after a partial line


def test_other_lines_and_broken_records_stay_as_they_are() -> None:
    for line in ("plain output", "", RESULT_MARK + "{not json", RESULT_MARK + '{"other": 1}', RESULT_MARK + "[1]"):
        assert split_marked_line(line) is None
        assert readable_lines(line) == [line]


def stream(chunks: list[bytes]) -> bytes:
    readable = ReadableStdout()
    return b"".join(readable.feed(chunk) for chunk in chunks) + readable.flush()


def test_the_stream_rewrites_the_record_wherever_the_chunks_cut_it() -> None:
    raw = ("[2, 3, 5]\nlast partial" + record({"json": [2, 3, 5]}) + "\n").encode()
    want = b"[2, 3, 5]\nlast partial\n\xe2\x86\x92 returned: [2, 3, 5]\n"
    for cut in range(len(raw) + 1):
        assert stream([raw[:cut], raw[cut:]]) == want, cut
    assert stream([bytes([b]) for b in raw]) == want  # a byte at a time


def test_the_stream_passes_output_through_at_once_and_holds_only_a_possible_mark() -> None:
    readable = ReadableStdout()
    assert readable.feed(b"prompt> ") == b"prompt> "  # no newline: still written now (logs -f)
    assert readable.feed(b"x\x1e@contree") == b"x"  # the start of a mark waits for the next chunk
    assert readable.feed(b" no mark\n") == b"\x1e@contree no mark\n"
    assert readable.feed(b"a\x1eb\n") == b"a\x1eb\n"  # a record separator that starts no mark
    assert readable.feed(RESULT_MARK.encode() + b'{"json": 1') == b""  # a record waits for its newline
    assert readable.flush() == RESULT_MARK.encode() + b'{"json": 1'  # cut short: shown as it came


def test_a_record_after_a_partial_line_of_an_earlier_chunk_starts_its_own_line() -> None:
    assert stream([b"no newline", (record({"json": "s"}) + "\n").encode()]) == 'no newline\n→ returned: "s"\n'.encode()
    assert stream([b"line\n", (record({"json": 0}) + "\n").encode()]) == "line\n→ returned: 0\n".encode()


def test_drop_leaves_the_record_out_wherever_the_chunks_cut_it() -> None:
    raw = ("out\npartial" + record({"json": list(range(50))}) + "\n").encode()
    for cut in range(len(raw) + 1):
        dropping = ReadableStdout(drop=True)
        assert dropping.feed(raw[:cut]) + dropping.feed(raw[cut:]) + dropping.flush() == b"out\npartial", cut
