"""`/bin/true` through the HTTP API with contree-client, vs a bare launch; and API runs/s with 4 clients.

The engine is served the way a user gets it: `contree-tui engine serve` in its own process (started on
demand by contree_tui.client.embedded), over its Unix socket; the clients are the official contree-client
(async, httpx) in this process.

Series 1, interleaved run by run after a warm-up:
  api    spawn_instance("/bin/true") + follow_operation_events to `completion` (what a client that shows
         live output does), default request (non-disposable; nothing changes, nothing is committed)
  bare   bench/baseline_launch.py over the same lowers, in this process
Goal: api median <= 3x the bare median.

Series 2: 4 clients, each with its own connection, share 120 such runs back to back; baseline: the same
number of bare launches split over 4 processes (bench_throughput's). Three rounds, API and bare alternating
(one round is about a second, and this machine's neighbours come and go); the median round counts.
Goal: >= 100 runs/s.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from baseline_launch import bare_launch
from bench_throughput import bare_rate
from common import header, median, spread, verdict
from contree_client.httpx import ContreeAsyncClient

from contree_tui.client.embedded import ensure_engine
from contree_tui.engine.state_dir import StateDir
from contree_tui.engine.store import Store
from contree_tui.paths import engine_root

RUNS = 40
WARMUP = 5
GOAL_RATIO = 3.0
CLIENTS = 4
TOTAL = 120
ROUNDS = 3
GOAL_RATE = 100.0


def client_for(sock: Path) -> ContreeAsyncClient:
    http = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(sock)), timeout=60)
    return ContreeAsyncClient("bench", base_url="http://localhost", httpx_client=http)


async def api_true(client: ContreeAsyncClient, image: str) -> float:
    started = time.perf_counter()
    spawned = await client.spawn_instance("/bin/true", image)
    last = None
    async for event in client.follow_operation_events(spawned.uuid):
        last = event
    elapsed = time.perf_counter() - started
    if last is None or last.type != "completion" or last.data.status != "SUCCESS":
        raise SystemExit(f"API run failed: {last}")
    return elapsed


async def main() -> int:
    header("bench_api: /bin/true through the HTTP API (contree-client, Unix socket)")
    with tempfile.TemporaryDirectory(prefix="contree-bench-api-") as tmp:
        state = Path(tmp) / "engine"
        sock = await ensure_engine(state)
        try:
            clients = [client_for(sock) for _ in range(CLIENTS)]
            image = await clients[0].inspect_find_image_by_tag("busybox:latest")
            lowers = image_lowers(engine_root(state), image)  # the bare baseline mounts the same layers

            def bare() -> float:
                started = time.perf_counter()
                code = bare_launch(lowers, str(Path(tmp) / f"bare-{time.monotonic_ns()}"))
                if code != 0:
                    raise SystemExit(f"bare launch failed: exit {code}")
                return time.perf_counter() - started

            for _ in range(WARMUP):
                await api_true(clients[0], image)
                bare()
            series: dict[str, list[float]] = {"api": [], "bare": []}
            for i in range(RUNS):
                for kind in (("api", "bare") if i % 2 else ("bare", "api")):
                    series[kind].append(await api_true(clients[0], image) if kind == "api" else bare())

            async def loop(client: ContreeAsyncClient, count: int) -> None:
                for _ in range(count):
                    await api_true(client, image)

            rates: list[float] = []
            bare_rates: list[float] = []
            for round_ in range(ROUNDS):
                started = time.perf_counter()
                await asyncio.gather(*(loop(c, TOTAL // CLIENTS) for c in clients))
                rates.append(TOTAL / (time.perf_counter() - started))
                bare_rates.append(bare_rate(lowers, str(Path(tmp) / f"bare-rate-{round_}"), CLIENTS))
            rate, bare_per_second = median(rates), median(bare_rates)
        finally:
            subprocess.run([sys.executable, "-m", "contree_tui.cli", "engine", "stop", "--state-dir", str(state)],
                           capture_output=True, check=False)
    ratio = median(series["api"]) / median(series["bare"])
    print(f"bare launch (baseline)   : {spread(series['bare'])}")
    print(f"API spawn + follow       : {spread(series['api'])}")
    ok1, ok2 = ratio <= GOAL_RATIO, rate >= GOAL_RATE
    print(f"API / bare               : {ratio:.2f}x (goal <= {GOAL_RATIO:g}x) {verdict(ok1)}")
    print(f"{CLIENTS} API clients         : {rate:.0f} runs/s (goal >= {GOAL_RATE:g}/s) {verdict(ok2)}; bare launches "
          f"in {CLIENTS} processes: {bare_per_second:.0f}/s, API/bare {rate / bare_per_second:.2f}")
    rounds = " | ".join(f"{a:.0f} / {b:.0f}" for a, b in zip(rates, bare_rates, strict=True))
    print(f"  rounds (API / bare)    : {rounds}")
    return 0 if ok1 and ok2 else 1


def image_lowers(root: Path, image_uuid: str) -> list[str]:
    """Overlay lowers of an image, read from the serving engine's state dir (sqlite WAL: a reader is fine)."""
    state = StateDir(root)
    store = Store(state.database)
    try:
        layers = store.get_image(image_uuid).layers
    finally:
        store.close()
    return [str(state.scaffold), *(str(state.layers / layer) for layer in reversed(layers))]


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
