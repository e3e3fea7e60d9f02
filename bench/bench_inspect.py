"""The confined inspect helper: its round trip, and the engine's responsiveness while hostile helpers run.

Series 1 (in process), interleaved call by call after a warm-up:
  list   `await engine.list_directory(busybox, "/")`: fork, namespaces, overlay mount, pivot_root, privilege
         drop, the listing, the pipe read back asynchronously
  fork   a bare os.fork() of this same process whose child exits at once, reaped: the part of a helper's
         cost that is the size of the engine's address space, not the sandbox
No goal: the ratio is reported (the previous helper, a forked root process that chrooted, measured
6.6-8.0 ms for `list` on this machine when it was quiet).

Series 2 (a served engine, `contree-tui engine serve` in its own process): `GET /v1/whoami` latency with
nothing else running (baseline), then while 8 hostile helpers run back to back for a few seconds — 2 lists
of an image whose /etc/passwd is a FIFO, 2 greps of `(a*)*b` over 30 kB of `a`s, 2 lists of a 200,000-entry
directory, 2 archives of a tree with FIFOs. Goal: the slowest whoami under 200 ms (issue #10).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import header, median, spread, temp_engine, verdict

from contree_tui.client.embedded import ensure_engine

RUNS = 50
WARMUP = 5
HOSTILE_SECONDS = 5.0
GOAL_WHOAMI = 0.2


def bare_fork() -> float:
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return time.perf_counter() - started


async def series_list() -> None:
    async with temp_engine() as bench:
        engine = bench.engine
        image = await engine.ensure_busybox()
        for _ in range(WARMUP):
            await engine.list_directory(image, "/")
        lists, forks = [], []
        for _ in range(RUNS):
            started = time.perf_counter()
            listing = await engine.list_directory(image, "/")
            lists.append(time.perf_counter() - started)
            assert any(item["path"] == "bin" for item in listing["files"])
            forks.append(bare_fork())
    print(f"bare fork (baseline)    : {spread(forks)}")
    print(f"list / in a helper      : {spread(lists)}  ({median(lists) / median(forks):.2f}x the bare fork)")


async def run(api: httpx.AsyncClient, image: str, script: str) -> str:
    spawned = (await api.post("/v1/instances", json={"image": image, "command": script, "shell": True})).json()
    while True:
        body = (await api.get(f"/v1/operations/{spawned['uuid']}")).json()
        if body["status"] in ("SUCCESS", "FAILED", "CANCELLED"):
            if body["status"] != "SUCCESS":
                raise SystemExit(f"setup run failed: {body}")
            return str(body["result"]["image"])
        await asyncio.sleep(0.05)


async def whoami_latencies(sock: Path, seconds: float) -> list[float]:
    samples = []
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(sock)), base_url="http://engine",
                                 timeout=30) as http:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            assert (await http.get("/v1/whoami")).status_code == 200
            samples.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)
    return samples


async def hostile(sock: Path, url: str, params: dict[str, str], until: float) -> int:
    """Repeat one hostile request until `until`, draining each answer; the number of answers."""
    count = 0
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(sock)), base_url="http://engine",
                                 timeout=60) as http:
        while time.monotonic() < until:
            async with http.stream("GET", url, params=params) as answer:
                async for _ in answer.aiter_raw():
                    pass
            count += 1
    return count


async def hostile_clients(sock: Path, requests: list[tuple[str, dict[str, str]]], seconds: float) -> list[int]:
    until = time.monotonic() + seconds
    return list(await asyncio.gather(*(hostile(sock, url, params, until) for url, params in requests)))


def start_hostile_process(sock: Path, requests: list[tuple[str, dict[str, str]]]) -> subprocess.Popen[str]:
    """The hostile clients in a process of their own: draining 66 MB listings here would slow this
    process's whoami client, and that is not the engine's latency."""
    return subprocess.Popen([sys.executable, __file__, "--hostile", str(sock), json.dumps(requests),
                             str(HOSTILE_SECONDS)], stdout=subprocess.PIPE, text=True)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def series_hostile() -> bool:
    with tempfile.TemporaryDirectory(prefix="contree-bench-inspect-") as tmp:
        state = Path(tmp) / "engine"
        sock = await ensure_engine(state)
        try:
            async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(sock)),
                                         base_url="http://engine", timeout=120) as api:
                base = (await api.get("/v1/images", params={"tag": "busybox:latest"})).json()["images"][0]["uuid"]
                fifo = await run(api, base, "rm /etc/passwd && mkfifo /etc/passwd /tmp/p && mkdir /d"
                                 " && mkfifo /d/a /d/b && head -c 30000 /dev/zero | tr '\\0' a > /aaa")
                big = await run(api, base, "mkdir /big && cd /big && seq 200000 | xargs touch")
            idle = await whoami_latencies(sock, 2.0)
            requests = [(f"/v1/inspect/{fifo}/list", {"path": "/"}),
                        (f"/v1/inspect/{fifo}/grep", {"pattern": "(a*)*b", "path": "/aaa"}),
                        (f"/v1/inspect/{big}/list", {"path": "/big"}),
                        (f"/v1/inspect/{fifo}/archive", {"path": "/"})] * 2
            clients = start_hostile_process(sock, requests)
            busy = await whoami_latencies(sock, HOSTILE_SECONDS)
            counts = json.loads(clients.communicate(timeout=120)[0])
        finally:
            subprocess.run([sys.executable, "-m", "contree_tui.cli", "engine", "stop", "--state-dir", str(state)],
                           capture_output=True, check=False)
    ok = max(busy) < GOAL_WHOAMI
    print(f"whoami, idle (baseline) : {spread(idle)}, p99 {p99(idle) * 1000:.1f} ms")
    print(f"whoami, 8 hostile       : {spread(busy)}, p99 {p99(busy) * 1000:.1f} ms, max {max(busy) * 1000:.1f} ms "
          f"(goal < {GOAL_WHOAMI * 1000:.0f} ms) {verdict(ok)}")
    print(f"  hostile answers in {HOSTILE_SECONDS:g} s: {sum(counts)} ({', '.join(str(c) for c in counts)}); "
          f"p99 busy/idle {p99(busy) / p99(idle):.1f}x")
    return ok


async def main() -> int:
    if sys.argv[1:2] == ["--hostile"]:
        sock, requests, seconds = Path(sys.argv[2]), json.loads(sys.argv[3]), float(sys.argv[4])
        print(json.dumps(await hostile_clients(sock, [(url, params) for url, params in requests], seconds)))
        return 0
    header("bench_inspect: the confined inspect helper")
    await series_list()
    return 0 if await series_hostile() else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
