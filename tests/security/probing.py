"""Running tests/security/probe.c inside a real sandbox and reading its word=result lines."""

from __future__ import annotations

from typing import Any

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import OperationStatus
from tests.engine.helpers import stdout


async def probe(engine: Engine, image: str, binary: bytes, *words: str, **fields: Any) -> dict[str, str]:
    """Each word's result inside a disposable run: "OK" or the errno's name (e.g. "EPERM")."""
    blob = engine.add_file(binary)
    op = await engine.run({"image": image, "command": "/probe", "args": list(words), "disposable": True,
                           "files": {"/probe": {"uuid": blob.uuid, "mode": "0755"}}, **fields})
    assert op.status is OperationStatus.SUCCESS, op.error
    out = stdout(op)
    results = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert set(results) == {word.split(":")[0] for word in words}, out
    return results
