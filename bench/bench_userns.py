"""The sandbox user namespace's cost (contree_tui/engine/sandbox/userns.py): what each run pays for it.

Two engines in this process, one with sandbox users (the default) and one without (sandbox_ids=None: the
old path, runs as host root), run `/bin/true` (default request, and a run writing one file, which is
committed: its copy-up and create go through the idmapped upper) alternately, in rotating order, after a
warm-up. Per run the new path adds keeper-side work only: setns into the user namespace + setresuid/gid,
and overlay over idmapped lowers and upper; keepers join the idmapped mount namespace at birth, off the
critical path. Also printed: opening the user and mount namespaces (once per engine start), median of 5.
Goal: with/without <= 1.10x for both requests.
"""

from __future__ import annotations

import asyncio
import sys
import time
from contextlib import AsyncExitStack

from common import header, median, spread, temp_engine, timed, verdict

from contree_tui.engine.engine import EngineConfig
from contree_tui.engine.sandbox.userns import SandboxIds, open_sandbox_users

RUNS = 60
WARMUP = 5
GOAL = 1.10


async def main() -> int:
    header("bench_userns: sandbox user namespace, per run")
    async with AsyncExitStack() as stack:
        with_users = await stack.enter_async_context(temp_engine())
        without = await stack.enter_async_context(temp_engine(EngineConfig(sandbox_ids=None)))
        opens = []
        for _ in range(5):
            started = time.perf_counter()
            users = open_sandbox_users(SandboxIds(), [str(with_users.engine.state.runs)])
            opens.append(time.perf_counter() - started)
            users.close()
        engines = {"users": with_users.engine, "host ids": without.engine}
        images = {name: (await engine.ensure_busybox()).uuid for name, engine in engines.items()}
        series: dict[tuple[str, str], list[float]] = {}
        bodies = {"true": {"command": "/bin/true", "shell": False},
                  "write": {"command": "echo x > /etc/made", "shell": True}}
        names = list(engines)
        for i in range(WARMUP + RUNS):
            for name in names[i % 2:] + names[:i % 2]:
                for kind, body in bodies.items():
                    elapsed, _ = await timed({**body, "image": images[name]}, engines[name])
                    if i >= WARMUP:
                        series.setdefault((name, kind), []).append(elapsed)
    print(f"open namespaces (per engine)  : {median(opens) * 1e3:.2f} ms (median of 5)")
    for kind in bodies:
        ratio = median(series[("users", kind)]) / median(series[("host ids", kind)])
        print(f"{kind:<6} with sandbox users   : {spread(series[('users', kind)])}")
        print(f"{kind:<6} host ids (old path)  : {spread(series[('host ids', kind)])}")
        print(f"{kind:<6} ratio                : {ratio:.2f}x (goal <= {GOAL:.2f}x: {verdict(ratio <= GOAL)})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
