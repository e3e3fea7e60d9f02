"""Running tests/security/probe.c inside a real sandbox and reading its word=result lines."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from typing import Any

import pytest

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


def build_static(tmp_path_factory: pytest.TempPathFactory, name: str, source: str) -> bytes:
    """A C program built static (busybox images have no libc) for injection into runs; skips without cc."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip(f"no C compiler to build {name}")
    out = tmp_path_factory.mktemp(name) / name
    out.with_suffix(".c").write_text(source)
    subprocess.run([compiler, "-static", "-O2", "-o", str(out), str(out.with_suffix(".c"))], check=True)
    return out.read_bytes()


def open_fd_kinds(limit: int = 64) -> dict[int, int]:
    """The calling process's open fds below `limit` and their file types (S_IFIFO, S_IFREG, ...)."""
    kinds = {}
    for fd in range(limit):
        try:
            kinds[fd] = stat.S_IFMT(os.fstat(fd).st_mode)
        except OSError:
            pass
    return kinds
