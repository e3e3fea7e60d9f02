"""The security suite: each test reproduces an attack on a real engine and asserts it is contained.

Fixtures: real engines under each sandbox keeper, and a static probe program."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.probing import build_static
from tests.security.served_engine import served_api, served_engine  # noqa: F401 - fixtures

PROBE_SOURCE = Path(__file__).with_name("probe.c")


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """tests/security/probe.c, built static (busybox images have no libc): one raw syscall per word."""
    return build_static(tmp_path_factory, "probe", PROBE_SOURCE.read_text())
