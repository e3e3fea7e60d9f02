"""The security suite: each test reproduces an attack on a real engine and asserts it is contained.

Fixtures: real engines under each sandbox keeper, and a static probe program."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.sandbox import native
from tests.security.served_engine import served_api, served_engine  # noqa: F401 - fixtures

HAVE_CC = shutil.which("cc") is not None or shutil.which("gcc") is not None
PROBE_SOURCE = Path(__file__).with_name("probe.c")


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


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """tests/security/probe.c, built static (busybox images have no libc): one raw syscall per word."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the probe")
    out = tmp_path_factory.mktemp("probe") / "probe"
    subprocess.run([compiler, "-static", "-O2", "-o", str(out), str(PROBE_SOURCE)], check=True)
    return out.read_bytes()
