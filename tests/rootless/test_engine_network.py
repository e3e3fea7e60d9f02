"""Networking rootless (#14): pasta is started from inside the engine's namespace and reaches what the host
routes to (a test host in a network namespace of its own, tests/security/test_network_outbound.py); offline
runs cannot. pasta attaches the sandbox's interface through /dev/net/tun: Debian's default mode is 0666, this
VM ships it 0600, where networking is refused with the fix (the test widens it for its run, then restores it)."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.rootless.conftest import TUN, NormalUser
from tests.rootless.engine_namespace import run_scenario, user_dirs
from tests.security.test_network_outbound import TEST_HOST, http_get, test_host  # noqa: F401 - the fixture

pytestmark = [pytest.mark.skipif(shutil.which("pasta") is None, reason="needs pasta (apt-get install passt)"),
              pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2's ip"),
              pytest.mark.skipif(not os.path.exists(TUN), reason=f"no {TUN}")]


def _scenario(user: NormalUser) -> dict[str, object]:
    with user_dirs(user) as (state, work):
        fetch = work / "fetch"
        fetch.write_text(http_get("/hello.txt", TEST_HOST))
        os.chown(fetch, user.uid, user.gid)
        return run_scenario(user, "network", state, work)


def test_a_networked_run_reaches_a_host_route_through_pasta(normal_user: NormalUser, test_host: str,  # noqa: F811
                                                            tun_mode: None) -> None:
    os.chmod(TUN, 0o666)
    seen = _scenario(normal_user)
    assert seen["available"] is True
    online = seen["online"]
    assert online["status"] == "SUCCESS", online  # type: ignore[index]
    lines = online["stdout"].splitlines()  # type: ignore[index]
    assert lines[0].startswith("HTTP/1.0 200") and lines[-2:] == [f"hello from the test host {test_host}", "rc=0"]
    assert seen["offline"]["stdout"].splitlines() == ["rc=1"]  # type: ignore[index]


def test_without_a_usable_tun_networking_is_refused_with_the_fix(normal_user: NormalUser, test_host: str,  # noqa: F811
                                                                 tun_mode: None) -> None:
    os.chmod(TUN, 0o600)
    seen = _scenario(normal_user)
    assert seen["available"] is False
    assert "chmod 0666 /dev/net/tun" in seen["online"]["refused"], seen  # type: ignore[index]
    assert seen["offline"]["stdout"].splitlines() == ["rc=1"]  # type: ignore[index]
