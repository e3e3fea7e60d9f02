"""A pipeline function step's return value as it travels in the operation's log, and the line shown instead.

The runner the step runs (pipeline/function_runner.py) writes the value to stdout as one marked line,
RESULT_MARK + JSON (`{"json": VALUE}`, or `{"repr": TEXT}` for values JSON cannot carry), after the function's
own output: the sandbox's stdout is the only channel that reaches the host for every run. The pipeline
executor strips it; anything else that shows an operation's log (`contree-tui logs`, the TUI's log views, a
saved log) shows it as `→ returned: VALUE` through this module, so no reader meets the raw record.

The mark is defined here for the client; the runner keeps its own copy because it is uploaded into sandboxes
as a stdlib-only file (tests/pipeline/test_step_result_logs.py holds the two equal).
"""

from __future__ import annotations

import json

RESULT_MARK = "\x1e@contree-pipeline-result "  # \x1e (record separator) never starts a line of ordinary text
RETURNED = "→ returned: "
_MARK = RESULT_MARK.encode()


def shown_value(payload: object) -> str | None:
    """A result record's value as text (JSON with sorted keys, or the runner's repr); None if not a record."""
    if not isinstance(payload, dict):
        return None
    if "json" in payload:
        return json.dumps(payload["json"], sort_keys=True)
    if "repr" in payload:
        return str(payload["repr"])
    return None


def split_marked_line(line: str) -> tuple[str, str] | None:
    """For a line holding a result record: (what the function printed before it on that line, possibly "",
    and `→ returned: VALUE`); None for any other line, a record whose JSON does not parse included (shown as is).

    The runner writes the record wherever the output stood, so a function that left a partial line puts the
    two on one line: `abc\\x1e@contree-pipeline-result {...}` reads as `abc`, then the returned line."""
    at = line.find(RESULT_MARK)
    if at < 0:
        return None
    try:
        value = shown_value(json.loads(line[at + len(RESULT_MARK):]))
    except ValueError:
        return None
    if value is None:
        return None
    return line[:at], RETURNED + value


def readable_lines(line: str) -> list[str]:
    """A log line as shown: a result record as `→ returned: VALUE` (after the text before it, if any)."""
    split = split_marked_line(line)
    if split is None:
        return [line]
    before, returned = split
    return [before, returned] if before else [returned]


class ReadableStdout:
    """A stdout byte stream with each result record rewritten as `→ returned: VALUE` (or dropped: `drop`), for
    writing as it comes (`contree-tui logs -f`, the pipeline's live node logs): bytes pass straight through,
    except a tail that may be the start of a mark (held until the next chunk says) and a marked line (held until
    its newline, at most the record's size: a 120 kB value spans several chunks of the sandbox's pipe)."""

    def __init__(self, *, drop: bool = False) -> None:
        self.drop = drop  # leave records out (the pipeline view shows the value its own way)
        self._held = b""
        self._line_open = False  # what was written so far ends inside a line

    def feed(self, data: bytes) -> bytes:
        """What to write now for this chunk."""
        data, self._held = self._held + data, b""
        out = bytearray()
        while (at := data.find(_MARK)) >= 0:
            end = data.find(b"\n", at)
            if end < 0:  # the record's line goes on in a later chunk
                out += data[:at]
                self._held, data = data[at:], b""
                break
            out += data[:at]
            split = split_marked_line(data[at:end].decode("utf-8", errors="replace"))
            if split is None:
                out += data[at:end + 1]
            elif not self.drop:
                if out[-1:] not in (b"", b"\n") or (not out and self._line_open):
                    out += b"\n"  # the function's own partial line ends here, not glued to the label
                out += split[1].encode() + b"\n"
            data = data[end + 1:]
        keep = _partial_mark(data)
        out += data[:len(data) - keep]
        if keep:
            self._held = data[len(data) - keep:]
        if out:
            self._line_open = not out.endswith(b"\n")
        return bytes(out)

    def flush(self) -> bytes:
        """The stream ended: whatever was held, as it came (a record cut short is not a value)."""
        held, self._held = self._held, b""
        return held


def _partial_mark(data: bytes) -> int:
    """How many bytes at the end of `data` are the first bytes of a mark (0 if none)."""
    start = data.rfind(b"\x1e", max(0, len(data) - len(_MARK) + 1))
    if start >= 0 and _MARK.startswith(data[start:]):
        return len(data) - start
    return 0


__all__ = ["RESULT_MARK", "RETURNED", "ReadableStdout", "readable_lines", "shown_value", "split_marked_line"]
