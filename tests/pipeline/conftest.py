"""Pipeline runs against a real served engine: the seeds' engine, holding the Debian image with python3 that
`engine bootstrap debian` built once per machine (function steps need python3), and busybox (shell steps)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contree_tui.client.connection import Connection, connect, embedded_target
from tests.client.conftest import FAST, isolate_contree_env
from tests.seeds.conftest import bootstrap_cache, debian_tarball, python_engine  # noqa: F401  (fixtures)

BUSYBOX = "tag:busybox:latest"


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own caches (the step cache included) and no Contree profile from the machine."""
    return isolate_contree_env(tmp_path, monkeypatch)


@pytest.fixture
def python_image(python_engine: tuple[Path, str]) -> str:  # noqa: F811
    return python_engine[1]


@pytest.fixture
async def connection(python_engine: tuple[Path, str]) -> AsyncIterator[Connection]:  # noqa: F811
    conn = await connect(embedded_target(python_engine[0]), backoff=FAST)
    try:
        yield conn
    finally:
        await conn.aclose()
