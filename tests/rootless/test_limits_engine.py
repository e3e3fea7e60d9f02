"""A normal user's engine, end to end (#14): `engine status` names the rootless mode and the limits in force,
a memory hog is stopped by RLIMIT_AS (and `engine run` says so beside dd's own words), and a fork bomb by the
per-run pids cap while the engine keeps answering (whoami < 500 ms: 0.27 s seen once with the machine at load 3.5
on 2 shared cores) and another run is not starved.

The engine's default limits are used (4 GiB, 1024 pids): a served engine takes no config. The script runs as
the user and talks to the engine over its socket with the API, as any client does. Its runs are offline: this
VM's /dev/net/tun is 0600, where a normal user's networked runs are refused (test_engine_network.py).
"""

from __future__ import annotations

import json
import uuid

from tests.rootless.conftest import NormalUser

SCRIPT = r"""
import asyncio, json, sys, time
import httpx
from contree_tui.client.embedded import ensure_engine
from contree_tui.client.engine_info import engine_info

BOMB = "b(){ b & b & sleep 100; }; b"

async def main(state):
    sock = await ensure_engine(state)
    out = {"info": await engine_info(sock)}
    transport = httpx.AsyncHTTPTransport(uds=str(sock))
    async with httpx.AsyncClient(transport=transport, base_url="http://engine", timeout=60,
                                 headers={"Authorization": "Bearer local"}) as c:
        async def run(command, timeout, wait=True):
            r = await c.post("/v1/instances", json={"image": "tag:busybox:latest", "command": command,
                                                    "shell": True, "timeout": timeout, "disposable": True,
                                                    "networking": {"enabled": False}})
            r.raise_for_status()
            op = r.json()["uuid"]
            while wait:
                body = (await c.get(f"/v1/operations/{op}")).json()
                if body["status"] in ("SUCCESS", "FAILED", "CANCELLED"):
                    return body
                await asyncio.sleep(0.05)
            return op
        if out["info"] and out["info"]["cgroups"] is None:  # RLIMIT_AS fails the allocation: no memory used
            out["hog"] = await run("dd if=/dev/zero of=/dev/null bs=5G count=1", 30)
        bomb = await run(BOMB, 8, wait=False)
        slowest, started = 0.0, time.monotonic()
        while time.monotonic() - started < 4:
            t = time.monotonic()
            assert (await c.get("/v1/whoami")).status_code == 200
            slowest = max(slowest, time.monotonic() - t)
            await asyncio.sleep(0.05)
        out["whoami_slowest"] = slowest
        out["other"] = await run("echo other run", 20)
        while True:
            body = (await c.get(f"/v1/operations/{bomb}")).json()
            if body["status"] in ("SUCCESS", "FAILED", "CANCELLED"):
                out["bomb"] = body
                break
            await asyncio.sleep(0.1)
    print(json.dumps(out))

asyncio.run(main(sys.argv[1]))
"""


def _stdout_of(op: dict) -> str:  # type: ignore[type-arg]
    from contree_tui.engine.output import decode_stream

    return decode_stream(op["metadata"]["result"]["stdout"]).decode()


def test_a_normal_users_engine_enforces_and_reports_its_limits(normal_user: NormalUser) -> None:
    state = normal_user.home / f"limits-{uuid.uuid4().hex[:8]}"
    try:
        first = normal_user.cli("engine", "run", "--state-dir", str(state), "--disposable", "--no-network", "--",
                                "true")
        assert first.returncode == 0, first.stderr
        status = normal_user.cli("engine", "status", "--state-dir", str(state))
        hog_cli = normal_user.cli("engine", "run", "--state-dir", str(state), "--disposable", "--no-network", "--",
                                  "dd if=/dev/zero of=/dev/null bs=5G count=1")
        done = normal_user.run(str(normal_user.python), "-c", SCRIPT, str(state), timeout=240)
    finally:
        normal_user.cli("engine", "stop", "--state-dir", str(state))
    assert status.returncode == 0, status.stderr
    assert f"mode: rootless as uid {normal_user.uid} with ids {normal_user.uid}, " in status.stdout, status.stdout
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    info = out["info"]
    assert info["mode"] == "rootless"
    if info["cgroups"] is None:
        assert "cgroups: none (" in status.stdout and "RLIMIT_AS" in status.stdout, status.stdout
        hog = out["hog"]["metadata"]["result"]
        assert hog["state"]["exit_code"] not in (0, -1), hog["state"]
        # dd says only "out of memory"; the engine names the limit in force beside it (address_space_note.py)
        assert hog_cli.returncode == 1 and "dd: out of memory\n" in hog_cli.stderr, hog_cli.stderr
        assert "FAILED: out of memory: the command failed (exit 1)" in hog_cli.stderr, hog_cli.stderr
        assert "4 GiB of address space per process (RLIMIT_AS" in hog_cli.stderr, hog_cli.stderr
    assert out["whoami_slowest"] < 0.5, out["whoami_slowest"]
    assert out["other"]["status"] == "SUCCESS" and _stdout_of(out["other"]) == "other run\n"
    assert out["bomb"]["status"] in ("SUCCESS", "FAILED")
