"""The per-run cost of #10's isolation vs the old path, each in the same process run, and the engine's
responsiveness while hostile helpers run. Four sections, one process:
  network   below (own network namespace + pasta vs the host's namespace)
  seccomp   bench_seccomp.main: installing Docker's filter vs a bare posix_spawn of /bin/true
  userns    bench_userns.main: runs with sandbox users vs with host ids, two engines interleaved
  hostile   bench_inspect.series_hostile: GET /v1/whoami while 8 hostile helpers (FIFO, regex, 200,000-entry
            directory, archives of FIFOs) run; goal: the slowest under 200 ms
Each section can also be run alone (python3 bench/bench_seccomp.py, ...). Exits 1 if the hostile goal is missed.

Network part.

Network (sandbox/network.py): a run with networking on now runs in a network namespace of its own, lent by
the keeper factory with a pasta attached, plus a lower layer holding /etc/resolv.conf. Series, interleaved
run by run in rotating order after a warm-up:
  networked   `/bin/true`, networking on (the default request, disposable): the new path
  host-netns  the same on an engine whose keepers stay in the host's network namespace: the old path,
              re-created for the comparison only (the engine refuses this since #10)
  offline     the same with networking off (a fresh namespace per run, loopback only: unchanged)
Also the one-time cost of a network slot (a namespace + its pasta), paid only when the pool of slots grows.
Goal: networked <= 1.5x host-netns.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from common import header, median, spread, temp_engine, timed, verdict

from contree_tui.engine.engine import Engine
from contree_tui.engine.sandbox.launch import Keeper
from contree_tui.engine.sandbox.limits import Limits
from contree_tui.engine.sandbox.network import ENV_PASTA, NetworkSlots, pasta_binary
from contree_tui.engine.sandbox.userns import UNPRIVILEGED_PORT_START

RUNS = 40
WARMUP = 5
GOAL = 1.5
SLOT_STARTS = 5


def as_old_path(engine: Engine) -> None:
    """Let this engine run networked requests in keepers left in the host's network namespace (pre-#10)."""
    engine.network_available = True
    take = engine.keepers.take

    async def take_as_networked(limits: Limits) -> tuple[Keeper, str | None]:
        keeper, slot = await take(limits)
        keeper.networked = True  # a lie, for the comparison only: this keeper shares the host's namespace
        return keeper, slot

    engine.keepers.take = take_as_networked  # type: ignore[method-assign]


def slot_start_times(pasta: str) -> list[float]:
    slots = NetworkSlots(pasta)
    times = []
    try:
        for _ in range(SLOT_STARTS):
            started = time.perf_counter()
            slot = slots._new_slot()
            times.append(time.perf_counter() - started)
            slots.give_back(slot)
    finally:
        slots.close()
    return times


async def network_section() -> int:
    """The old-path engine's keepers are in the host's network namespace, where a keeper sets
    ip_unprivileged_port_start=0 as it does in every sandbox's own (userns.allow_low_ports): put the
    host's value back afterwards (the engine itself never runs a sandbox there)."""
    with open(UNPRIVILEGED_PORT_START) as fh:
        host_value = fh.read()
    try:
        return await _network_section()
    finally:
        with open(UNPRIVILEGED_PORT_START, "w") as fh:
            fh.write(host_value)


async def _network_section() -> int:
    header("bench_isolation (network): /bin/true spawn -> completion, networking on")
    pasta = pasta_binary()
    if pasta is None:
        raise SystemExit("needs pasta (apt-get install passt)")
    os.environ[ENV_PASTA] = ""  # the old-path engine's factory starts no pasta
    async with temp_engine() as old_bench:
        del os.environ[ENV_PASTA]
        old = old_bench.engine
        as_old_path(old)
        async with temp_engine() as new_bench:
            new = new_bench.engine
            image_new, image_old = await new.ensure_busybox(), await old.ensure_busybox()
            bodies: dict[str, tuple[Engine, dict[str, Any]]] = {
                "networked": (new, {"image": image_new.uuid, "command": "/bin/true", "shell": False,
                                    "disposable": True}),
                "host-netns": (old, {"image": image_old.uuid, "command": "/bin/true", "shell": False,
                                     "disposable": True}),
                "offline": (new, {"image": image_new.uuid, "command": "/bin/true", "shell": False,
                                  "disposable": True, "networking": {"enabled": False}}),
            }
            kinds = list(bodies)
            for _ in range(WARMUP):
                for engine, body in bodies.values():
                    await timed(body, engine)
            series: dict[str, list[float]] = {kind: [] for kind in kinds}
            for i in range(RUNS):
                for kind in kinds[i % 3:] + kinds[:i % 3]:  # rotate: no series always runs first
                    engine, body = bodies[kind]
                    series[kind].append((await timed(body, engine))[0])
    slot_times = slot_start_times(pasta)
    base = median(series["host-netns"])
    print(f"host-netns (old path)       : {spread(series['host-netns'])}")
    print(f"networked (own netns+pasta) : {spread(series['networked'])}")
    print(f"offline (own netns, lo only): {spread(series['offline'])}")
    ratio = median(series["networked"]) / base
    print(f"ratio networked/host-netns  : {ratio:.2f}x (goal <= {GOAL:g}x: {verdict(ratio <= GOAL)})")
    print(f"ratio offline/host-netns    : {median(series['offline']) / base:.2f}x")
    print(f"network slot start (once per slot, not per run): {spread(slot_times)}")
    return 0


async def main() -> int:
    import bench_inspect  # the sections' own modules, beside this one (bench/ is sys.path[0])
    import bench_seccomp
    import bench_userns

    await network_section()
    bench_seccomp.main()
    await bench_userns.main()
    return 0 if await bench_inspect.series_hostile() else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
