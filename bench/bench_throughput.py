"""Trivial runs per second (`/bin/true`) with 1, 2 and 4 concurrent spawners, vs bare launches in the same run.

Engine: N asyncio loops, gathered, share a fixed total of runs; each loop does `await engine.run(...)` of
`/bin/true` (shell false, the default request) back to back. Rate = runs / wall time of the gather.
Baseline: bench/baseline_launch.py, the same total of launches split over N forked worker processes (the
bare launcher is synchronous, so processes give it the same concurrency), measured right after each engine
series. Printed: runs/s, the ratio to the 1-spawner rate, and the engine/bare rate ratio.
Goal: >= 100 runs/s (the best of the three engine rates).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from baseline_launch import bare_launch
from common import check, header, temp_engine, verdict

from contree_tui.engine.engine import Engine

CONCURRENCY = (1, 2, 4)
TOTAL = 120  # runs per series; divisible by every concurrency
GOAL = 100.0


async def engine_rate(engine: Engine, body: dict[str, object], spawners: int) -> float:
    async def loop(count: int) -> None:
        for _ in range(count):
            check(await engine.run(body))

    started = time.perf_counter()
    await asyncio.gather(*(loop(TOTAL // spawners) for _ in range(spawners)))
    return TOTAL / (time.perf_counter() - started)


def bare_rate(lowers: list[str], scratch: str, workers: int) -> float:
    started = time.perf_counter()
    pids = []
    for worker in range(workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - worker process
            code = 0
            try:
                for i in range(TOTAL // workers):
                    if bare_launch(lowers, f"{scratch}/bare-{workers}-{worker}-{i}") != 0:
                        code = 1
            except BaseException:  # noqa: BLE001 - nothing may escape a fork
                code = 1
            os._exit(code)
        pids.append(pid)
    failed = 0
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
    elapsed = time.perf_counter() - started
    if failed:
        raise SystemExit(f"bare launch failed in {failed} worker(s)")
    return TOTAL / elapsed


async def main() -> int:
    header(f"bench_throughput: /bin/true runs per second, {TOTAL} runs per series")
    async with temp_engine() as bench:
        engine = bench.engine
        image = await engine.ensure_busybox()
        lowers = engine.lowers_for(image)
        body = {"image": image.uuid, "command": "/bin/true", "shell": False}
        scratch = bench.scratch("bare")
        os.mkdir(scratch)
        for _ in range(5):  # warm-up
            check(await engine.run(body))
        bare_launch(lowers, f"{scratch}/warm")
        rates: dict[int, tuple[float, float]] = {}
        for n in CONCURRENCY:
            rates[n] = (await engine_rate(engine, body, n), bare_rate(lowers, scratch, n))

    one, bare_one = rates[1]
    for n, (rate, bare) in rates.items():
        print(f"{n} spawner(s): engine {rate:6.1f} runs/s ({rate / one:.2f}x the 1-spawner rate) | "
              f"bare {bare:6.1f} runs/s ({bare / bare_one:.2f}x) | engine/bare {rate / bare:.2f}")
    best = max(rate for rate, _ in rates.values())
    print(f"best engine rate: {best:.1f} runs/s (goal >= {GOAL:g}: {verdict(best >= GOAL)})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
