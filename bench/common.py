"""What every benchmark shares: a real engine in a temporary state dir, timing and printing helpers."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.models import Operation, OperationStatus


@dataclass
class BenchEngine:
    engine: Engine
    tmp: Path  # scratch space next to the state dir (same filesystem), removed with it

    def scratch(self, name: str) -> str:
        """A path that does not exist yet under tmp."""
        path = self.tmp / name
        suffix = 0
        while path.exists():
            suffix += 1
            path = self.tmp / f"{name}-{suffix}"
        return str(path)


@asynccontextmanager
async def temp_engine(config: EngineConfig | None = None) -> AsyncIterator[BenchEngine]:
    """An engine over a fresh tempfile state dir; everything (layers, copies, scratch) goes on exit."""
    if os.geteuid() != 0:
        raise SystemExit("the engine benchmarks need root (namespaces and overlay mounts)")
    with tempfile.TemporaryDirectory(prefix="contree-bench-") as tmp:
        engine = await Engine.open(Path(tmp) / "state", config or EngineConfig())
        try:
            yield BenchEngine(engine, Path(tmp))
        finally:
            await engine.close()
            remove_engine_cgroups(engine)


def remove_engine_cgroups(engine: Engine) -> None:
    """Engine.close removes its slots but leaves the per-engine parent group (`contree-tui-<state id>`) in
    every controller: one leaked empty cgroup per state dir. Remove ours (rmdir only succeeds when empty)."""
    pool = engine.cgroups
    if not pool.enabled:
        return
    root = Path("/sys/fs/cgroup")
    parents = [root / pool.name] if pool.version == 2 else [root / c / pool.name for c in ("memory", "cpu", "pids")]
    for parent in parents:
        try:
            parent.rmdir()
        except OSError:
            pass


async def timed(body: dict[str, Any], engine: Engine) -> tuple[float, Operation]:
    """Spawn → completion through the public API; seconds and the finished operation (must be SUCCESS)."""
    started = time.perf_counter()
    op = await engine.run(body)
    elapsed = time.perf_counter() - started
    check(op)
    return elapsed, op


def check(op: Operation) -> None:
    if op.status != OperationStatus.SUCCESS:
        raise SystemExit(f"benchmark run failed: {op.status.value}: {op.error} {op.result}")


def time_call(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


async def time_async(fn: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """`median (p10-p90, n=…)` in ms, for the lines where noise matters."""
    ordered = sorted(values)
    lo = ordered[int(0.1 * (len(ordered) - 1))]
    hi = ordered[int(0.9 * (len(ordered) - 1))]
    return f"{median(values) * 1000:.2f} ms (p10 {lo * 1000:.2f} - p90 {hi * 1000:.2f}, n={len(values)})"


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def header(title: str) -> None:
    print(f"== {title} ==", flush=True)
