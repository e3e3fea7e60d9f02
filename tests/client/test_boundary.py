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


PIPELINE_CHECK = (
    "import contree_tui.pipeline, contree_tui.pipeline.nodes, contree_tui.pipeline.functions, "
    "contree_tui.pipeline.loader, contree_tui.pipeline.function_runner, contree_tui.pipeline.executor, "
    "contree_tui.pipeline.headless, contree_tui.pipeline.entry, sys; "
    "bad = sorted(m for m in sys.modules if m.startswith(('textual', 'contree_tui.engine', 'contree_tui.tui')) "
    "or m == 'contree_tui.cli' or m.startswith('contree_tui.cli.')); "
    "assert not bad, bad"
)


def test_pipeline_modules_import_only_the_client() -> None:
    """pipeline/ may use client/, never the TUI, the CLI or the engine (the TUI and the CLI use it)."""
    done = subprocess.run([sys.executable, "-c", PIPELINE_CHECK], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_the_function_runner_is_stdlib_only() -> None:
    """It is uploaded alone into sandboxes that have python3 and nothing else installed."""
    from pathlib import Path

    import contree_tui.pipeline.function_runner as runner
    code = (f"import runpy, sys; sys.path[:0] = []; runpy.run_path({str(Path(runner.__file__))!r}); "
            "bad = sorted(m for m in sys.modules if m.startswith(('contree_tui', 'contree_client', 'httpx'))); "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_the_function_runner_parses_as_python_3_9() -> None:
    """Images carry whatever python3 their distribution has (Debian 11: 3.9): no newer syntax in the runner."""
    import ast
    from pathlib import Path

    import contree_tui.pipeline.function_runner as runner
    ast.parse(Path(runner.__file__).read_text(), feature_version=(3, 9))
