"""Small helpers for the client tests: trees on disk and runs that look at what a sandbox sees."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

from contree_client.models import OperationStatus

from contree_tui.client.connection import Connection
from contree_tui.client.sync import DirectoryState

BUSYBOX = "tag:busybox:latest"


def make_tree(root: Path, count: int, salt: str, *, dirs: int = 40) -> list[str]:
    """`count` small files with distinct contents (the salt keeps them unknown to a shared engine), in a
    few levels of directories; returns their relative paths."""
    rels = []
    for i in range(count):
        rel = f"pkg{i % dirs}/sub{i % 7}/mod{i}.py"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {salt} module {i}\nVALUE = {i}\n")
        rels.append(rel)
    settle()
    return rels


def settle() -> None:
    """Let a clock tick pass after writing files, so a sync right after sees them as settled rather than
    "racily clean" (see sync_cache.RACY_NS), which keeps hash counts exact. Editors don't save and sync
    within 10 ms; tests do."""
    time.sleep(0.02)


def salt() -> str:
    return os.urandom(8).hex()


async def run_in_sandbox(connection: Connection, state: DirectoryState, command: str) -> str:
    """Run a shell command with the state's files; its stdout (the run must succeed with exit 0)."""
    client = connection.client
    spawned = await client.spawn_instance(command, BUSYBOX, shell=True, files=state.files(), disposable=True,
                                          timeout=60)
    done = await client.wait_operation(spawned.uuid, timeout=120)
    assert done.status == OperationStatus.SUCCESS, done.error
    result = done.metadata.result  # type: ignore[union-attr]
    assert result.state.exit_code == 0, result.stderr
    out = result.stdout
    return base64.b64decode(out.value).decode() if out.encoding == "base64" else str(out.value)
