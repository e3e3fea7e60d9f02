"""Shared fixtures: a real engine in a temporary state directory (real namespaces, real overlay layers)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.models import Image
from contree_tui.engine.sandbox import native

HAVE_CC = shutil.which("cc") is not None or shutil.which("gcc") is not None


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    eng = await Engine.open(tmp_path / "state", EngineConfig())
    try:
        yield eng
    finally:
        await eng.close()


@pytest.fixture
async def busybox(engine: Engine) -> Image:
    return await engine.ensure_busybox()


@pytest.fixture
async def open_engine(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Engine]]]:
    """Open engines with a custom config (limits, squash depth) in tmp_path; all are closed afterwards."""
    opened: list[Engine] = []

    async def factory(config: EngineConfig | None = None, name: str = "state") -> Engine:
        eng = await Engine.open(tmp_path / name, config or EngineConfig())
        opened.append(eng)
        return eng

    try:
        yield factory
    finally:
        for eng in reversed(opened):
            await eng.close()


@pytest.fixture(params=["native", "python"])
async def keeper_engine(request: pytest.FixtureRequest, open_engine: Callable[..., Awaitable[Engine]],
                        monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Engine, str]]:
    """(engine, busybox image) with keeper.c, then with the forked Python keeper (CONTREE_TUI_NATIVE_KEEPER=0)."""
    if request.param == "native" and not HAVE_CC:
        pytest.skip("no C compiler on this machine")
    monkeypatch.setenv(native.ENV_SWITCH, "1" if request.param == "native" else "0")
    engine = await open_engine()
    assert (engine.keepers.native is not None) == (request.param == "native")
    image = await engine.ensure_busybox()
    yield engine, image.uuid
