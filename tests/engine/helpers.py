"""Small helpers the engine tests share."""

from __future__ import annotations

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
