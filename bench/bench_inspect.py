"""`list /` on busybox:latest through the Python API (`engine.list_directory`): the confined inspect helper's
round trip (fork, namespaces, overlay mount, pivot_root, privilege drop, the listing, the pipe back).

Prints the median and spread of RUNS calls after a warm-up. No goal: the figure is reported against the
previous helper (a forked root process that chrooted) when the helper's containment changes.
"""

from __future__ import annotations

import asyncio
import sys
import time

from common import header, spread, temp_engine

RUNS = 50
WARMUP = 5


async def main() -> int:
    header("bench_inspect: engine.list_directory(busybox, '/')")
    async with temp_engine() as bench:
        engine = bench.engine
        image = await engine.ensure_busybox()
        for _ in range(WARMUP):
            await engine.list_directory(image, "/")
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            listing = await engine.list_directory(image, "/")
            times.append(time.perf_counter() - started)
            assert any(item["path"] == "bin" for item in listing["files"])
    print(f"list /  : {spread(times)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
