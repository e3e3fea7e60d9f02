"""Loading the lineage of a 10,000-image tree: requests and time, cold and incremental, against the naive
derivation (per image: GET /inspect/{uuid}/ for its producing operation, GET /operations/{id} for its source).

The engine is served as a user gets it (`contree-tui engine serve`, started on demand). The tree is built
first (not timed): 8 chains grown side by side from busybox, every 25th run branching off the chain's image 10
steps back, so there are deep chains and siblings. Building it is most of this benchmark's time (~37 runs/s
here: 10,000 runs take about 4-5 minutes); `--images N` makes a smaller tree.

Then, each with a fresh connection whose transport counts requests:
  cold     a Lineage with an empty cache: the listings, a page per 1,000
  warm     the same Lineage after one more run: `since=` listings
  reopen   a new Lineage on the same cache file (a new process), then its first refresh
  naive    the per-image derivation above, 8 requests in flight (the baseline)
Goal: the cold load takes <= 1 request per 100 images and is >= 10x faster than the naive derivation; a warm
refresh takes <= 3 requests.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import header, ms, verdict
from contree_client.httpx import ContreeAsyncClient

from contree_tui.client.connection import EMBEDDED_TIMEOUT, IDENTITY, Connection, embedded_target
from contree_tui.client.embedded import ensure_engine
from contree_tui.client.lineage import Lineage
from contree_tui.client.lineage_cache import LineageCache
from contree_tui.client.reconnect import Backoff

WORKERS = 8
IN_FLIGHT = 8
GOAL_PER_REQUEST = 100  # images per request, at least
GOAL_SPEEDUP = 10.0


class Counting(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.count = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def open_counted(state_dir: Path) -> tuple[Connection, Counting]:
    socket = await ensure_engine(state_dir)
    transport = Counting(httpx.AsyncHTTPTransport(uds=str(socket)))
    http = httpx.AsyncClient(transport=transport, timeout=EMBEDDED_TIMEOUT)
    target = embedded_target(state_dir)
    client = ContreeAsyncClient(target.token, base_url=target.url, identity=IDENTITY, httpx_client=http)
    connection = Connection(target, client, http, backoff=Backoff(), socket=socket)
    connection.identity = (await client.whoami()).token_uuid or ""
    transport.count = 0
    return connection, transport


async def build_tree(connection: Connection, images: int) -> str:
    client = connection.client
    base = await client.inspect_find_image_by_tag("busybox:latest")
    per_worker = images // WORKERS
    done = 0
    started = time.perf_counter()

    async def grow(worker: int) -> None:
        nonlocal done
        chain = [base]
        for i in range(per_worker):
            source = chain[-10] if i % 25 == 24 and len(chain) > 10 else chain[-1]
            spawned = await client.spawn_instance(f"echo {worker}-{i} > /w{worker}", source, shell=True,
                                                  disposable=False)
            result = await client.wait_operation(spawned.uuid)
            chain.append(str(result.result.image))  # type: ignore[union-attr]
            done += 1
            if done % 1000 == 0:
                rate = done / (time.perf_counter() - started)
                print(f"  built {done:,} images ({rate:.0f} runs/s)", flush=True)

    await asyncio.gather(*(grow(w) for w in range(WORKERS)))
    return base


async def naive(connection: Connection, uuids: list[str]) -> dict[str, str | None]:
    """The parent of every image, derived one image at a time (2 requests each)."""
    client = connection.client
    limit = asyncio.Semaphore(IN_FLIGHT)
    parents: dict[str, str | None] = {}

    async def one(uuid: str) -> None:
        async with limit:
            image = await client.inspect_image(uuid)
            op = image.operation_uuid
            if not isinstance(op, str):
                parents[uuid] = None
                return
            source = (await client.get_operation_status(op)).image_uuid
            parents[uuid] = source if isinstance(source, str) and source != uuid else None

    await asyncio.gather(*(one(u) for u in uuids))
    return parents


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    count = parser.parse_args().images
    header(f"bench_lineage: the lineage of a {count:,}-image tree, cold / incremental vs per-image derivation")
    with tempfile.TemporaryDirectory(prefix="contree-bench-lineage-") as tmp:
        state_dir = Path(tmp) / "engine"
        try:
            builder, _ = await open_counted(state_dir)
            started = time.perf_counter()
            await build_tree(builder, count)
            print(f"tree built in {time.perf_counter() - started:.0f} s (context, not timed)", flush=True)

            connection, wire = await open_counted(state_dir)
            cache_file = Path(tmp) / "lineage.sqlite"
            lineage = Lineage(connection, cache=LineageCache(cache_file))
            started = time.perf_counter()
            cold = await lineage.refresh()
            cold_seconds = time.perf_counter() - started
            cold_requests = wire.count
            tree = lineage.tree
            print(f"cold   : {ms(cold_seconds)}, {cold_requests} requests for {len(tree):,} images and "
                  f"{len(tree.operations):,} operations (report: {cold.requests})", flush=True)

            await builder.client.wait_operation((await builder.client.spawn_instance(
                "echo one-more > /more", tree.roots[0], shell=True, disposable=False)).uuid)
            wire.count = 0
            started = time.perf_counter()
            warm = await lineage.refresh()
            warm_seconds = time.perf_counter() - started
            print(f"warm   : {ms(warm_seconds)}, {wire.count} requests, {len(warm.new_images)} new image(s), "
                  f"{warm.images_listed} image rows listed", flush=True)
            warm_requests = wire.count
            lineage.close()

            wire.count = 0
            started = time.perf_counter()
            reopened = Lineage(connection, cache=LineageCache(cache_file))
            size = len(reopened.tree)
            loaded = time.perf_counter() - started
            await reopened.refresh()
            print(f"reopen : cache load {ms(loaded)} ({size:,} images, 0 requests), then a refresh of "
                  f"{ms(time.perf_counter() - started - loaded)} with {wire.count} requests", flush=True)
            reopened.close()

            uuids = sorted(tree.images)
            wire.count = 0
            started = time.perf_counter()
            parents = await naive(connection, uuids)
            naive_seconds = time.perf_counter() - started
            print(f"naive  : {ms(naive_seconds)}, {wire.count} requests", flush=True)
            wrong = sum(1 for u in uuids if parents[u] != tree.parent(u))
            if wrong:
                print(f"unexpected: {wrong} parents differ between the lineage and the naive derivation")
            await connection.aclose()
            await builder.aclose()
        finally:
            subprocess.run([sys.executable, "-m", "contree_tui.cli", "engine", "stop", "--state-dir",
                            str(state_dir)], capture_output=True, check=False)
    speedup = naive_seconds / cold_seconds
    per_request = len(tree) / max(1, cold_requests)
    print(f"naive / cold: {speedup:.1f}x; {per_request:.0f} images per request cold")
    ok = per_request >= GOAL_PER_REQUEST and speedup >= GOAL_SPEEDUP and warm_requests <= 3 and not wrong
    print(f"cold: {cold_requests} requests, {speedup:.1f}x faster than naive; warm: {warm_requests} requests "
          f"(goal >= {GOAL_PER_REQUEST} images per request, >= {GOAL_SPEEDUP:g}x, warm <= 3) {verdict(ok)}")
    return 0 if not wrong else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
