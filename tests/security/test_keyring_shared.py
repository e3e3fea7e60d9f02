"""Issue #10 item 5: the kernel keyring is not namespaced. A run (host uid 0, like the engine) read a key
host root had put in its user keyring (@u) and planted one host root then read back. add_key, keyctl and
request_key now fail with EPERM inside every run (Docker's profile leaves them out; seccomp.py). Before
the fix keyctl_read printed the host's secret and add_key returned OK."""

from __future__ import annotations

import ctypes
import errno
import uuid
from collections.abc import Iterator

import pytest

from contree_tui.engine.engine import Engine
from tests.security.probing import probe

_libc = ctypes.CDLL(None, use_errno=True)
SYS_ADD_KEY, SYS_KEYCTL = 248, 250  # x86_64
KEY_SPEC_USER_KEYRING = -4
KEYCTL_SEARCH, KEYCTL_INVALIDATE = 10, 21
SECRET = b"host-root-secret"


def _search(description: str) -> int:
    """The serial of a "user" key in this (host root's) @u, or -errno."""
    serial = _libc.syscall(SYS_KEYCTL, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, b"user", description.encode(), 0)
    return serial if serial >= 0 else -ctypes.get_errno()


@pytest.fixture
def host_key() -> Iterator[tuple[str, int]]:
    """A key in host root's user keyring, as `keyctl add user NAME SECRET @u` makes it."""
    description = f"contree-test-{uuid.uuid4().hex[:8]}"
    serial = _libc.syscall(SYS_ADD_KEY, b"user", description.encode(), SECRET, len(SECRET), KEY_SPEC_USER_KEYRING)
    if serial < 0:
        pytest.skip(f"add_key on the host: {errno.errorcode.get(ctypes.get_errno())}")
    try:
        yield description, serial
    finally:
        _libc.syscall(SYS_KEYCTL, KEYCTL_INVALIDATE, serial)


async def test_a_run_cannot_read_or_plant_host_keys(keeper_engine: tuple[Engine, str], probe_binary: bytes,
                                                    host_key: tuple[str, int]) -> None:
    engine, image = keeper_engine
    description, serial = host_key
    planted = f"{description}-planted"
    results = await probe(engine, image, probe_binary, f"keyctl_search:{description}", f"keyctl_read:{serial}",
                          f"request_key:{description}", f"add_key:{planted}")
    assert results == {"keyctl_search": "EPERM", "keyctl_read": "EPERM", "request_key": "EPERM",
                       "add_key": "EPERM"}
    assert _search(planted) == -errno.ENOKEY  # nothing reached host root's keyring
    assert _search(description) == serial  # and the host's own key is untouched
