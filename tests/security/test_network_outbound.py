"""Issue #10 item 4, the other half: with its own network namespace a sandbox still gets outbound access,
through pasta, to what the host routes to. The destination is a test host in a network namespace this test
makes (a veth pair on 198.51.100.0/24, TEST-NET-2: this machine's own eth0 is on TEST-NET-1), serving HTTP;
no other non-loopback address is ever contacted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Image, OperationStatus
from tests.engine.helpers import sh, stdout

HOST_SIDE, TEST_HOST = "198.51.100.1", "198.51.100.2"
HOST_SIDE6, TEST_HOST6 = "2001:db8:c7::1", "2001:db8:c7::2"  # the IPv6 documentation prefix
PORT = 8080

pytestmark = pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2's ip")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def test_host(tmp_path: Path) -> Iterator[str]:
    """An HTTP server at TEST_HOST:PORT in a network namespace of its own, routed from the host."""
    tag = uuid.uuid4().hex[:6]
    netns, outer, inner = f"ctnet-{tag}", f"ctn{tag}h", f"ctn{tag}n"
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_text(f"hello from the test host {tag}\n")
    ip("netns", "add", netns)
    server = None
    try:
        ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", netns)
        ip("addr", "add", f"{HOST_SIDE}/24", "dev", outer)
        ip("link", "set", outer, "up")
        ip("-n", netns, "addr", "add", f"{TEST_HOST}/24", "dev", inner)
        ip("addr", "add", f"{HOST_SIDE6}/64", "dev", outer, "nodad")
        ip("-n", netns, "addr", "add", f"{TEST_HOST6}/64", "dev", inner, "nodad")
        ip("-n", netns, "link", "set", inner, "up")
        ip("-n", netns, "link", "set", "lo", "up")
        server = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, "-m", "http.server", "--bind", "::",  # v4 and v6
             "--directory", str(tmp_path / "www"), str(PORT)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["ip", "netns", "exec", netns, "sh", "-c", f"grep -q ':{PORT:04X} 0*:0000 0A'"
                              " /proc/net/tcp6"], check=False).returncode != 0:
            assert server.poll() is None and time.monotonic() < deadline, "the test host's server did not start"
            time.sleep(0.05)
        yield tag
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", outer], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)
        assert not os.path.exists(f"/run/netns/{netns}")


def http_get(path: str, host: str = TEST_HOST) -> str:
    """A shell line fetching http://TEST_HOST:PORT/path with busybox nc (busybox's wget segfaults in this image).

    nc's stdin stays open (a FIFO the shell holds) so it never half-closes: passt 0.0~git20230309 then loses
    the server's FIN about one time in five and nc would wait forever (see sandbox/network.py).
    """
    return (f"mkfifo /tmp/in; nc -w 5 {host} {PORT} < /tmp/in & exec 3> /tmp/in;"
            f" printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3; wait $!; echo rc=$?")


@pytest.mark.parametrize("address", [TEST_HOST, TEST_HOST6])
async def test_outbound_reaches_a_host_route_through_pasta(engine: Engine, busybox: Image, test_host: str,
                                                           address: str) -> None:
    op = await sh(engine, busybox.uuid, http_get("/hello.txt", address), disposable=True, timeout=30)
    assert op.status is OperationStatus.SUCCESS, op.error
    lines = stdout(op).splitlines()
    assert lines[0].startswith("HTTP/1.0 200"), lines
    assert lines[-2:] == [f"hello from the test host {test_host}", "rc=0"], lines


async def test_outbound_is_off_with_networking_disabled(engine: Engine, busybox: Image, test_host: str) -> None:
    # nc fails at once here, so the printf may write to a FIFO nobody reads: without the trap SIGPIPE would
    # kill the shell before it says rc= (1 run in ~10 under load).
    op = await sh(engine, busybox.uuid, "trap '' PIPE; " + http_get("/hello.txt"), disposable=True, timeout=30,
                  networking={"enabled": False})
    assert stdout(op).splitlines() == ["rc=1"], op.result
