"""What every headless command shares: where it writes (Console), how it refuses (CommandError) and the
exit code for an unusable Contree."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

Options = Mapping[str, Any]
EXIT_UNAVAILABLE = 2  # Contree could not be reached or used (like the engine's EngineError)


class CommandError(Exception):
    """A command that cannot do what was asked; `str()` is the whole message."""


class Console:
    """Where a command writes: text and bytes, stdout and stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(f"contree-tui: {text}", file=self.err, flush=True)

    def json(self, value: Any) -> None:
        print(json.dumps(value, indent=2), file=self.out, flush=True)

    def write_bytes(self, stream: str, data: bytes) -> None:
        target = self.err if stream == "stderr" else self.out
        target.flush()
        buffer = getattr(target, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            target.write(data.decode("utf-8", errors="replace"))
            target.flush()
