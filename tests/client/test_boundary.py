"""The client layer stays headless and engine-free: it speaks only the wire API (contree-client)."""

from __future__ import annotations

import subprocess
import sys

CHECK = (
    "import contree_tui.client.connection, contree_tui.client.sync, contree_tui.client.watcher, "
    "contree_tui.client.lineage, contree_tui.client.operations, contree_tui.client.position, "
    "contree_tui.client.workspace, contree_tui.client.runner, contree_tui.client.disk, sys; "
    "bad = sorted(m for m in sys.modules if m.startswith(('textual', 'contree_tui.engine'))); "
    "assert not bad, bad"
)


def test_client_modules_import_neither_textual_nor_the_engine() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
