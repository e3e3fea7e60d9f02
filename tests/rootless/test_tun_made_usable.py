"""A normal user's engine started while /dev/net/tun was 0600 refuses a networked run with the fix (`chmod 0666
/dev/net/tun`); once an administrator has run it, the SAME engine runs networked (#14). Before, the engine and its
keeper factory decided at start whether networking existed: after the chmod it went on refusing, and then named
the wrong cause ("networking needs pasta: apt-get install passt", with passt installed), so a stranger who did
exactly what the message said was told to install a package they had.

The test flips the machine's /dev/net/tun (0600, then 0666) and puts its mode back, as test_engine_network.py does.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.rootless.conftest import TUN, NormalUser

pytestmark = [pytest.mark.skipif(shutil.which("pasta") is None, reason="needs pasta (apt-get install passt)"),
              pytest.mark.skipif(not os.path.exists(TUN), reason=f"no {TUN}")]


def test_chmod_0666_as_the_refusal_says_lets_the_running_engine_network(normal_user: NormalUser,
                                                                      tun_mode: None) -> None:
    state = normal_user.new_state_dir()
    try:
        os.chmod(TUN, 0o600)
        offline = normal_user.cli("engine", "run", "--state-dir", str(state), "--no-network", "--", "echo offline")
        assert offline.returncode == 0 and offline.stdout == "offline\n", offline.stderr
        pid = normal_user.engine_pid(state)
        refused = normal_user.cli("engine", "run", "--state-dir", str(state), "--", "echo online")
        assert refused.returncode != 0 and "chmod 0666 /dev/net/tun" in refused.stderr, refused.stderr

        os.chmod(TUN, 0o666)  # what the refusal tells the administrator to do
        online = normal_user.cli("engine", "run", "--state-dir", str(state), "--",
                                 "ip -o link | grep -c -v ' lo:'; echo online")
        assert "apt-get install passt" not in online.stderr, online.stderr
        assert online.returncode == 0, online.stderr
        assert online.stdout == "1\nonline\n"  # the sandbox's own interface besides loopback: pasta's
        assert normal_user.engine_pid(state) == pid  # the same engine: no restart was needed
    finally:
        normal_user.stop_engines()
