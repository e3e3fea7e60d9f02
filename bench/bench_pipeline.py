"""A 50-step pipeline (a Serial of 10 Parallels of 5 trivial shell steps on busybox) through the pipeline
executor, vs the same 50 runs issued directly through the client; then the same pipeline again, fully cached.

The engine is served as a user gets it (`contree-tui engine serve` started on demand, its own process, Unix
socket); both sides use one contree-tui Connection in this process.

Series 1, pipeline and direct rounds interleaved (which goes first alternates) after a warm-up; each round's
commands carry a fresh nonce, so nothing is cached:
  pipeline  PipelineRun.run(): states, events (a no-op listener subscribed), the step cache's lookups and
            writes, ancestor slots, checkpoints
  direct    the same waves by hand: for each Parallel, asyncio.gather of spawn_instance + follow_events to
            completion, from the same source
Goal: pipeline median <= 1.2x the direct median (the scheduling overhead per step is printed too).

Series 2: a round's pipeline run again unchanged: every step a cache hit (checked), no operation started.
Goal: <= 1 s.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import header, median, verdict

from contree_tui.client.connection import Connection, connect, embedded_target
from contree_tui.client.operations import RunOutcome, follow_events
from contree_tui.pipeline import Exec, Parallel, Serial
from contree_tui.pipeline.executor import PipelineRun, State

LEVELS = 10
WIDTH = 5
ROUNDS = 5  # one round is ~1 s of each; this VM's neighbours come and go, so the median of 5 counts
GOAL_RATIO = 1.2
GOAL_CACHED = 1.0
BUSYBOX = "tag:busybox:latest"


def command(nonce: str, level: int, i: int) -> str:
    return f"echo {nonce}-{level}-{i} > /f{i}"


def build(nonce: str) -> Serial:
    root = Serial().set(image=BUSYBOX)
    for level in range(LEVELS):
        wave = root.add(f"wave{level}", Parallel())
        for i in range(WIDTH):
            wave[f"step{i}"] = Exec(command(nonce, level, i))  # type: ignore[index]
    return root


async def through_pipeline(conn: Connection, nonce: str) -> tuple[float, PipelineRun]:
    run = PipelineRun(build(nonce), conn)
    run.subscribe(lambda _event: None)
    started = time.perf_counter()
    state = await run.run()
    elapsed = time.perf_counter() - started
    if state is not State.DONE:
        raise SystemExit(f"pipeline failed: {[(r.path, r.error) for r in run.runs.values() if r.error]}")
    return elapsed, run


async def direct(conn: Connection, source: str, nonce: str) -> float:
    client = conn.client

    async def one(cmd: str) -> None:
        spawned = await client.spawn_instance(cmd, source, shell=True)
        outcome = RunOutcome()
        async for event in follow_events(conn, str(spawned.uuid).lower()):
            outcome.observe(event)
        if outcome.shell_exit_code() != 0:
            raise SystemExit(f"direct run failed: {outcome}")

    started = time.perf_counter()
    for level in range(LEVELS):
        await asyncio.gather(*(one(command(nonce, level, i)) for i in range(WIDTH)))
    return time.perf_counter() - started


async def main() -> int:
    header(f"bench_pipeline: {LEVELS * WIDTH} steps (Serial of {LEVELS} Parallels of {WIDTH}) vs direct client runs")
    with tempfile.TemporaryDirectory(prefix="contree-bench-pipe-") as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")  # a fresh step cache
        state = Path(tmp) / "engine"
        conn = await connect(embedded_target(state))
        try:
            source = (await conn.client.resolve_image(BUSYBOX)).lower()
            await through_pipeline(conn, "warm")  # warm-up: both paths, page cache and engine pools
            await direct(conn, source, "warm-direct")
            piped: list[float] = []
            plain: list[float] = []
            nonces: list[str] = []
            for index in range(ROUNDS):
                nonce = uuid.uuid4().hex[:8]
                nonces.append(nonce)
                if index % 2:  # which goes first alternates, so a drift in the machine's load hits both alike
                    plain.append(await direct(conn, source, nonce + "d"))
                piped.append((await through_pipeline(conn, nonce))[0])
                if not index % 2:
                    plain.append(await direct(conn, source, nonce + "d"))
            ratio = median(piped) / median(plain)
            per_step = (median(piped) - median(plain)) / (LEVELS * WIDTH)
            print(f"pipeline: median {median(piped):.2f} s ({', '.join(f'{t:.2f}' for t in piped)})")
            print(f"direct:   median {median(plain):.2f} s ({', '.join(f'{t:.2f}' for t in plain)})")
            print(f"ratio {ratio:.2f}x (goal <= {GOAL_RATIO}x), overhead {per_step * 1000:+.1f} ms per step: "
                  f"{verdict(ratio <= GOAL_RATIO)}")

            ops_before = len(await conn.client.list_operations(limit=1000))
            cached: list[float] = []
            for _ in range(3):
                elapsed, run = await through_pipeline(conn, nonces[0])
                if not all(r.cached for r in run.runs.values() if r.kind == "exec"):
                    raise SystemExit("the unchanged re-run was not all cache hits")
                cached.append(elapsed)
            ops_after = len(await conn.client.list_operations(limit=1000))
            print(f"fully cached re-run: median {median(cached):.3f} s ({', '.join(f'{t:.3f}' for t in cached)}), "
                  f"{ops_after - ops_before} operations started (goal <= {GOAL_CACHED} s): "
                  f"{verdict(median(cached) <= GOAL_CACHED and ops_after == ops_before)}")
            ok = ratio <= GOAL_RATIO and median(cached) <= GOAL_CACHED
        finally:
            await conn.aclose()
            subprocess.run([sys.executable, "-m", "contree_tui.cli", "engine", "stop", "--state-dir", str(state)],
                           capture_output=True, timeout=60, check=False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
