"""TUI tests drive ContreeApp with Pilot against a real served engine (started through ensure_engine in a
temporary state dir, once per session, stopped with `engine stop`), or, for SVG snapshots, against a frozen
backend whose data and clock never change."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from contree_tui.client.embedded import ensure_engine
from tests.client.conftest import CONTREE_ENV, stop_engine


@pytest.fixture(scope="session")
def tui_engine_dir() -> Iterator[Path]:
    """A served engine for the TUI tests (a short /tmp path: Unix socket paths stop at 107 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="ctu-")) / "engine"
    asyncio.run(ensure_engine(root))
    try:
        yield root
    finally:
        stop_engine(root)
        shutil.rmtree(root.parent, ignore_errors=True)


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No profile, token or URL from the machine: the app connects to the test engine only."""
    for name in CONTREE_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "contree-home"
    monkeypatch.setenv("CONTREE_HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return home
