"""Issue #10 item 4: a sandbox with networking on (the spec's default) shared the host's network namespace. It
bound host ports, reached every service on the host's 127.0.0.1 and ::1 (the engine's own TCP API among
them) and saw the host's abstract unix sockets. Each test here reproduced its attack before sandboxes got
namespaces of their own (sandbox/network.py); now a sandbox gets outbound access through pasta and nothing
of the host's loopback, and sandboxes running at the same time cannot reach each other."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest

from contree_tui.engine.engine import Engine
from contree_tui.engine.http import create_app
from contree_tui.engine.models import Image, Operation, OperationStatus
from tests.api.conftest import serve, stop
from tests.engine.helpers import sh, stdout

READY_WAIT = 15.0  # s a sandbox may take to come up on a loaded 2-core machine


@contextmanager
def listeners(*families: socket.AddressFamily) -> Iterator[list[tuple[socket.socket, int]]]:
    """A TCP listener on the host's loopback for each family (127.0.0.1, ::1) and its port."""
    with ExitStack() as stack:
        opened = []
        for family in families:
            sock = stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
            sock.listen(8)
            sock.setblocking(False)
            opened.append((sock, sock.getsockname()[1]))
        yield opened


def no_connection_came(socks: list[socket.socket]) -> bool:
    readable, _, _ = select.select(socks, [], [], 0.2)
    return not readable


async def started(engine: Engine, image: Image, script: str, marker: str) -> Operation:
    """Spawn `script` (which creates /tmp/`marker` once set up, then waits) and return once it has."""
    op = await engine.spawn({"image": image.uuid, "command": script, "shell": True, "timeout": 60})
    ready = f"{engine.state.runs}/{op.uuid}/upper/tmp/{marker}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_WAIT
    while not os.path.exists(ready):  # written by the sandbox into its own upper dir
        assert loop.time() < deadline, f"the sandbox did not get ready: {engine.store.get_operation(op.uuid)}"
        assert not engine.store.get_operation(op.uuid).status.is_terminal, engine.store.get_operation(op.uuid)
        await asyncio.sleep(0.02)
    return op


def connect_refused(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect((host, port))
        except ConnectionRefusedError:
            return True
    return False


async def test_host_loopback_listeners_are_unreachable(engine: Engine, busybox: Image) -> None:
    with listeners(socket.AF_INET, socket.AF_INET6) as [(v4, port4), (v6, port6)]:
        script = (f"echo x | nc -w 2 127.0.0.1 {port4} && echo v4-reached || echo v4-unreachable;"
                  f" echo x | nc -w 2 ::1 {port6} && echo v6-reached || echo v6-unreachable")
        op = await sh(engine, busybox.uuid, script, disposable=True, timeout=20)
        assert op.status is OperationStatus.SUCCESS, op.error
        assert stdout(op).split() == ["v4-unreachable", "v6-unreachable"], op.result
        assert no_connection_came([v4, v6]), "a connection from the sandbox reached the host's loopback"


@pytest.fixture
async def tcp_api(engine: Engine) -> AsyncIterator[int]:
    """The engine's own API on a host TCP port (as `contree-tui engine serve --listen 127.0.0.1:PORT`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server, task = await serve(create_app(engine, keepalive=0.2, cancel_wait=5.0), sockets=[sock])
    try:
        yield sock.getsockname()[1]
    finally:
        await stop(server, task)
        sock.close()


async def test_the_engines_tcp_api_is_unreachable(engine: Engine, busybox: Image, tcp_api: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{tcp_api}", timeout=10) as http:  # control
        assert (await http.get("/v1/no/such/route")).status_code == 404
    script = (f"printf 'GET /v1/operations HTTP/1.0\\r\\n\\r\\n' | nc -w 2 127.0.0.1 {tcp_api};"
              " echo; echo done")
    op = await sh(engine, busybox.uuid, script, disposable=True, timeout=20)
    assert op.status is OperationStatus.SUCCESS, op.error
    assert "HTTP/1" not in stdout(op) and stdout(op).split() == ["done"], op.result


async def test_host_abstract_unix_sockets_are_invisible(engine: Engine, busybox: Image) -> None:
    name = f"ct-net-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as host_socket:
        host_socket.bind(f"\0{name}")
        host_socket.listen(1)
        with open("/proc/net/unix") as fh:
            assert f"@{name}" in fh.read()  # control: the host sees it
        op = await sh(engine, busybox.uuid, "cat /proc/net/unix", disposable=True)
    assert op.status is OperationStatus.SUCCESS, op.error
    lines = stdout(op).splitlines()
    assert name not in stdout(op)
    assert len(lines) == 1 and lines[0].startswith("Num"), f"host unix sockets seen from the sandbox: {lines[:5]}"


async def test_a_port_bound_inside_is_not_a_host_listener(engine: Engine, busybox: Image) -> None:
    assert connect_refused("127.0.0.1", 81), "something on the host already listens on port 81"
    script = ("nc -ll -p 81 -e true & until grep -q ':0051 [0-9A-F:]* 0A' /proc/net/tcp /proc/net/tcp6; do"
              " sleep 0.02; done; touch /tmp/bound; sleep 50")
    op = await started(engine, busybox, script, "bound")
    try:
        assert connect_refused("127.0.0.1", 81), "the sandbox's port 81 is a host listener"
        assert connect_refused("::1", 81), "the sandbox's port 81 is a host listener (IPv6)"
    finally:
        await engine.cancel(op.uuid)


async def test_sandboxes_running_together_cannot_reach_each_other(engine: Engine, busybox: Image) -> None:
    serving = ("nc -ll -p 7777 -e echo from-a & until grep -q ':1E61 [0-9A-F:]* 0A' /proc/net/tcp /proc/net/tcp6;"
               " do sleep 0.02; done; echo x | nc -w 2 127.0.0.1 7777 > /tmp/self; touch /tmp/bound; sleep 50")
    a = await started(engine, busybox, serving, "bound")
    try:
        probe = ("echo x | nc -w 2 127.0.0.1 7777 && echo reached || echo unreachable;"
                 " grep -c ':1E61 ' /proc/net/tcp /proc/net/tcp6 | cut -d: -f2")
        b = await sh(engine, busybox.uuid, probe, disposable=True, timeout=20)
        assert b.status is OperationStatus.SUCCESS, b.error
        assert stdout(b).split() == ["unreachable", "0", "0"], b.result
    finally:
        await engine.cancel(a.uuid)


async def test_a_sandbox_reaches_its_own_listener(engine: Engine, busybox: Image) -> None:
    """The control for the test above: inside one sandbox the same listener is reachable."""
    script = ("nc -ll -p 7777 -e echo from-a & until grep -q ':1E61 [0-9A-F:]* 0A' /proc/net/tcp /proc/net/tcp6;"
              " do sleep 0.02; done; echo x | nc -w 2 127.0.0.1 7777")
    op = await sh(engine, busybox.uuid, script, disposable=True, timeout=20)
    assert stdout(op).split() == ["from-a"], op.result


async def test_networked_runs_get_a_resolver_and_others_keep_the_images_own(engine: Engine, busybox: Image) -> None:
    networked = await sh(engine, busybox.uuid, "cat /etc/resolv.conf", disposable=True)
    offline = await sh(engine, busybox.uuid, "cat /etc/resolv.conf 2>&1", disposable=True,
                       networking={"enabled": False})
    with open("/etc/resolv.conf") as fh:
        host = [line.split()[1] for line in fh if line.startswith("nameserver ")]
    expected = [f"nameserver {address}" for address in host if not address.startswith(("127.", "::1", "fe80:"))]
    assert [line for line in stdout(networked).splitlines() if line.startswith("nameserver")] == expected
    assert "No such file" in stdout(offline)  # busybox has none; nothing was added for an offline run


async def test_networking_without_pasta_is_refused_with_the_package_to_install(
        open_engine: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTREE_TUI_PASTA", "")
    engine = await open_engine()  # type: ignore[operator]
    image = await engine.ensure_busybox()
    with pytest.raises(Exception, match="apt-get install passt") as refused:
        await sh(engine, image.uuid, "true")
    assert getattr(refused.value, "status", None) == 400
    offline = await sh(engine, image.uuid, "echo fine", networking={"enabled": False})
    assert stdout(offline) == "fine\n"


async def test_a_pasta_that_does_not_start_fails_the_run_instead_of_sharing_the_host_network(
        open_engine: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTREE_TUI_PASTA", "/bin/false")
    engine = await open_engine()  # type: ignore[operator]
    image = await engine.ensure_busybox()
    op = await sh(engine, image.uuid, "cat /proc/net/unix | wc -l")
    assert op.status is OperationStatus.FAILED and "networking unavailable" in (op.error or ""), op
    offline = await sh(engine, image.uuid, "echo fine", networking={"enabled": False})
    assert stdout(offline) == "fine\n"


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pastas_of(factory_pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv0 = fh.read().split(b"\0", 1)[0]
        except OSError:
            continue
        if int(fields[1]) == factory_pid and argv0.endswith(b"pasta") and fields[0] != "Z":
            found.add(int(entry))
    return found


async def test_no_pasta_outlives_the_engine(open_engine: object) -> None:
    engine = await open_engine(name="short-lived")  # type: ignore[operator]
    image = await engine.ensure_busybox()
    assert stdout(await sh(engine, image.uuid, "echo up")) == "up\n"
    factory = engine.keepers._factory
    assert factory is not None
    pastas = pastas_of(factory.pid)
    assert pastas, "no pasta serves the engine's sandboxes"
    await engine.close()  # kills the factory, as the engine's death does (PDEATHSIG)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while alive := {pid for pid in pastas if running(pid)}:
        assert loop.time() < deadline, f"pasta outlived the engine: {alive}"
        await asyncio.sleep(0.02)


async def test_a_reused_network_namespace_keeps_nothing_of_the_sandbox_before(engine: Engine, busybox: Image) -> None:
    """Namespaces are lent again once their keeper is reaped: whatever the last sandbox left listening died
    with it (its pid namespace), so a later sandbox in the same namespace reaches nothing of it."""
    leaving = ("nc -ll -p 7777 -e echo left-behind & until grep -q ':1E61 [0-9A-F:]* 0A' /proc/net/tcp"
               " /proc/net/tcp6; do sleep 0.02; done; readlink /proc/self/ns/net")
    first = await sh(engine, busybox.uuid, leaving, disposable=True, timeout=20)
    namespace = stdout(first).strip()
    assert namespace.startswith("net:["), first.result
    probe = "readlink /proc/self/ns/net; echo x | nc -w 1 127.0.0.1 7777 && echo reached || echo unreachable"
    seen = []
    for _ in range(8):  # more than the idle keepers ahead of the freed namespace (4)
        later = await sh(engine, busybox.uuid, probe, disposable=True, timeout=20)
        seen.append(stdout(later).split())
    assert all(answer == "unreachable" for _, answer in seen), seen
    assert namespace in {ns for ns, _ in seen}, f"the namespace was not lent again: {namespace} {seen}"
