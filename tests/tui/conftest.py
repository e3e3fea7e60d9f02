"""TUI tests drive ContreeApp with Pilot against a real served engine (started through ensure_engine in a
temporary state dir, once per session, stopped with `engine stop`), or, for SVG snapshots, against a frozen
backend whose data and clock never change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.conftest import isolate_contree_env, served_engine


@pytest.fixture(scope="session")
def tui_engine_dir() -> Iterator[Path]:
    yield from served_engine("ctu-")


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No profile, token or URL from the machine: the app connects to the test engine only."""
    return isolate_contree_env(tmp_path, monkeypatch)
