"""Low ports under sandbox users. The sandbox's root keeps CAP_NET_BIND_SERVICE, but it holds in the sandbox's
user namespace only, and a network namespace's ports answer to the namespace that owns it (the host's user
namespace, for a sandbox's own network namespace as for pasta's). So the keepers set ip_unprivileged_port_start
to 0 in the sandbox's own network namespace (as Docker does in every container's): its root and any other
id bind port 80, with networking on (pasta) or off. Without it `nc -l -p 80` failed with EACCES.
The host's network namespace is never changed: no run is in it (offline runs unshare one of their own,
online ones run in pasta's, engine.py refuses the rest)."""

from __future__ import annotations

import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import OperationStatus
from tests.engine.helpers import stdout
from tests.security.probing import build_static

BIND = r"""
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((unsigned short)atoi(argv[i]));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        printf("%s=%s\n", argv[i], bind(fd, (struct sockaddr *)&a, sizeof a) == 0 ? "OK" : strerrorname_np(errno));
    }
    return 0;
}
"""


@pytest.fixture(scope="session")
def bind_probe(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_static(tmp_path_factory, "bind", BIND)


async def _bind(engine: Engine, image: str, binary: bytes, networking: bool, uid: int) -> str:
    blob = engine.add_file(binary)
    # port 0: any free unprivileged port (a fixed one could be taken on the host), the control
    op = await engine.run({"image": image, "command": "/bind", "args": ["80", "0"], "uid": uid, "disposable": True,
                           "networking": {"enabled": networking},
                           "files": {"/bind": {"uuid": blob.uuid, "mode": "0755"}}})
    assert op.status is OperationStatus.SUCCESS, op.error
    return stdout(op)


async def test_low_ports_in_the_sandboxs_own_network_namespace(keeper_engine: tuple[Engine, str],
                                                              bind_probe: bytes) -> None:
    engine, image = keeper_engine
    for networking in (False, True):
        if networking and not engine.network_available:
            continue
        for uid in (0, 1000):
            assert (await _bind(engine, image, bind_probe, networking, uid)).split() == ["80=OK", "0=OK"]
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as fh:
        assert int(fh.read()) > 0  # the host's own setting is untouched
