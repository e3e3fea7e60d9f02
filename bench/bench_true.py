"""`/bin/true` spawn → completion through the Python API vs a bare pivot_root launch, in the same process.

Three series are interleaved run by run, in rotating order (so drift and noise hit them alike), after a warm-up:
  engine        `await engine.run({"image": busybox, "command": "/bin/true", "shell": False})` (the default
                request: non-disposable; `true` changes nothing, so nothing is committed)
  disposable    the same with "disposable": true
  bare          bench/baseline_launch.py over the same lowers (scaffold + busybox layer)
Goal: engine median <= 2x the bare median.
"""

from __future__ import annotations

import asyncio
import sys
import time

from baseline_launch import bare_launch
from common import header, median, spread, temp_engine, timed, verdict

RUNS = 60
WARMUP = 5
GOAL = 2.0
ORDERS = (("engine", "disposable", "bare"), ("disposable", "bare", "engine"), ("bare", "engine", "disposable"))


async def main() -> int:
    header("bench_true: /bin/true spawn -> completion")
    async with temp_engine() as bench:
        engine = bench.engine
        image = await engine.ensure_busybox()
        lowers = engine.lowers_for(image)
        body = {"image": image.uuid, "command": "/bin/true", "shell": False}
        disposable = {**body, "disposable": True}

        def bare() -> float:
            started = time.perf_counter()
            code = bare_launch(lowers, bench.scratch("bare-run"))
            elapsed = time.perf_counter() - started
            if code != 0:
                raise SystemExit(f"bare launch failed: exit {code}")
            return elapsed

        for _ in range(WARMUP):
            await timed(body, engine)
            await timed(disposable, engine)
            bare()
        series: dict[str, list[float]] = {"engine": [], "disposable": [], "bare": []}
        new_images = 0
        for i in range(RUNS):
            for kind in ORDERS[i % len(ORDERS)]:  # rotate, so no series always runs first or after another
                if kind == "bare":
                    series["bare"].append(bare())
                    continue
                elapsed, op = await timed(body if kind == "engine" else disposable, engine)
                series[kind].append(elapsed)
                new_images += kind == "engine" and op.result_image_uuid != image.uuid

    base = median(series["bare"])
    print(f"bare launch (baseline)      : {spread(series['bare'])}")
    print(f"engine.run, default request : {spread(series['engine'])}")
    print(f"engine.run, disposable      : {spread(series['disposable'])}")
    ratio = median(series["engine"]) / base
    ratio_disposable = median(series["disposable"]) / base
    print(f"ratio engine/bare           : {ratio:.2f}x (goal <= {GOAL:g}x: {verdict(ratio <= GOAL)})")
    print(f"ratio disposable/bare       : {ratio_disposable:.2f}x")
    if new_images:
        print(f"note: {new_images}/{RUNS} non-disposable `true` runs produced a new image (expected none)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
