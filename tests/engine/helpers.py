"""Small helpers the engine tests share."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Operation
from contree_tui.engine.output import decode_stream


async def sh(engine: Engine, image: str, script: str, **fields: Any) -> Operation:
    """Run a shell expression on `image` and wait for it."""
    return await engine.run({"image": image, "command": script, "shell": True, **fields})


def stdout(op: Operation) -> str:
    assert op.result is not None, op.error
    return decode_stream(op.result["stdout"]).decode()


def stderr(op: Operation) -> str:
    assert op.result is not None, op.error
    return decode_stream(op.result["stderr"]).decode()


def host_processes(*argv: str) -> set[int]:
    """Host pids whose command line is exactly `argv` (zombies read as empty and are not counted)."""
    wanted = b"\0".join(a.encode() for a in argv) + b"\0"
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if fh.read() == wanted:
                    found.add(int(entry))
        except OSError:
            continue
    return found


async def lingering(argv: tuple[str, ...], before: set[int], timeout: float = 2.0) -> set[int]:
    """Host processes running `argv` that were not in `before`, once they had up to `timeout` s to go."""
    deadline = time.monotonic() + timeout
    while True:
        left = host_processes(*argv) - before
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.02)
