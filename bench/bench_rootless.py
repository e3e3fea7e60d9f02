"""bench_true and bench_throughput's engine figures as root and as a normal user (rootless), in one invocation.

Each figure is measured by a child process running this script with `--measure`, on an engine of its own in a
fresh state dir (common.temp_engine), with the same interpreter (the test user's venv of Debian's Python, so
neither side gets a faster Python):
  root      the child as root, in the host's namespaces
  rootless  the child as a normal user (tests/rootless/user_kit.py: contree-bench, created if missing and
            removed again), entered as `engine serve` enters (engine/rootless_entry.py: a user namespace
            mapping 0 -> the user and 1..65535 -> its /etc/subuid range, a slave mount namespace, a pid
            namespace whose pid 1 it becomes)
The two alternate ROUNDS times (root first, then rootless first, …), so drift and load hit both alike.
  true        `/bin/true` spawn -> completion through `await engine.run(...)` (the default request), median
  throughput  `/bin/true` runs/s with 1, 2, 4 concurrent spawners (bench_throughput.engine_rate)
Printed: each figure, and rootless/root as time per run (for throughput the inverse rate ratio).
Goal: every ratio <= 1.5x.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests.rootless.user_kit (bench/ is sys.path[0])

from bench_throughput import engine_rate
from common import header, spread, temp_engine, timed, verdict

from tests.rootless.user_kit import REPO, SUBID_COUNT, SUBID_START, ensure_user, usable_tun

RUNS = 60  # `true` runs per round
WARMUP = 5
CONCURRENCY = (1, 2, 4)
ROUNDS = 4  # root-vs-root (both children as root) measured 1.00-1.22x with 2 rounds on a shared VM
GOAL = 1.5
CHILD_TIMEOUT = 600
# A user of its own, not the tests' contree-rootless (a test session may be using that one, and this removes
# the user it made), with a subordinate range of its own next to the tests' one
BENCH_USER = "contree-bench"
BENCH_SUBIDS = SUBID_START + SUBID_COUNT


async def measure() -> dict[str, object]:
    """One round in this process: `true` latencies and the runs/s per concurrency."""
    from contree_tui.engine.privilege import running_rootless

    async with temp_engine() as bench:
        engine = bench.engine
        image = await engine.ensure_busybox()
        body = {"image": image.uuid, "command": "/bin/true", "shell": False}
        for _ in range(WARMUP):
            await timed(body, engine)
        latencies = [(await timed(body, engine))[0] for _ in range(RUNS)]
        rates = {n: await engine_rate(engine, body, n) for n in CONCURRENCY}
    return {"rootless": running_rootless(), "true": latencies, "rates": rates}


def run_child(argv: list[str], env: dict[str, str], mode: str) -> dict[str, object]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=CHILD_TIMEOUT, env=env, cwd="/")
    if done.returncode != 0:
        raise SystemExit(f"the {mode} measurement failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["rootless"] != (mode == "rootless"):
        raise SystemExit(f"the {mode} child ran in the wrong mode (rootless={result['rootless']})")
    return result


def main() -> int:
    if os.geteuid() != 0:
        raise SystemExit("bench_rootless needs root: it measures the root engine and creates the normal user")
    header(f"bench_rootless: /bin/true and runs/s, root vs rootless, {ROUNDS} alternating rounds")
    try:
        user = ensure_user(BENCH_USER, BENCH_SUBIDS)
    except RuntimeError as exc:
        raise SystemExit(f"bench_rootless: {exc}") from None
    try:
        script = str(Path(__file__).resolve())
        # both children's state dirs in /tmp (tempfile's default), which the user may write too
        root_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), "HOME": "/root",
                    "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        children = {
            "root": ([str(user.python), script, "--measure"], root_env),
            "rootless": (user.argv(str(user.python), script, "--measure"), dict(os.environ)),
        }
        samples: dict[str, list[float]] = {"root": [], "rootless": []}
        rates: dict[str, dict[int, list[float]]] = {m: {n: [] for n in CONCURRENCY} for m in samples}
        with usable_tun():  # the default request is networked (pasta, /dev/net/tun): as Debian ships it, 0666
            for i in range(ROUNDS):
                for mode in ("root", "rootless") if i % 2 == 0 else ("rootless", "root"):  # neither always first
                    argv, env = children[mode]
                    result = run_child(argv, env, mode)
                    samples[mode] += result["true"]  # type: ignore[operator]
                    for n, rate in result["rates"].items():  # type: ignore[attr-defined]
                        rates[mode][int(n)].append(rate)
    finally:
        user.remove()

    print(f"user {user.name} (uid {user.uid}), python {user.python}")
    ok = True
    for mode in samples:
        print(f"{mode:8} true      : {spread(samples[mode])}")
    ratio = statistics.median(samples["rootless"]) / statistics.median(samples["root"])
    ok &= ratio <= GOAL
    print(f"ratio rootless/root, true          : {ratio:.2f}x (goal <= {GOAL:g}x: {verdict(ratio <= GOAL)})")
    for n in CONCURRENCY:
        root, rootless = statistics.median(rates["root"][n]), statistics.median(rates["rootless"][n])
        ratio = root / rootless  # time per run, rootless over root
        ok &= ratio <= GOAL
        print(f"{n} spawner(s): root {root:6.1f} runs/s | rootless {rootless:6.1f} runs/s | "
              f"ratio rootless/root (time per run) {ratio:.2f}x (goal <= {GOAL:g}x: {verdict(ratio <= GOAL)})")
    print(f"all ratios within {GOAL:g}x: {verdict(ok)}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--measure"]:
        from contree_tui.engine.rootless_entry import enter_rootless_namespace

        enter_rootless_namespace()  # as a normal user (nothing as root): before asyncio starts a thread
        print(json.dumps(asyncio.run(measure())), flush=True)
        sys.exit(0)
    sys.exit(main())
