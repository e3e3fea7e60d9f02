"""Cost of one step (spawn → commit → completion) on images at chain depth 1, 50 and 200.

A step is a non-disposable shell run that appends to a file (`/etc/motd`: a copy-up of a lower file), creates
one file (`/root/step<N+1>`) and deletes another (`/root/step<N>`, made by the previous step: a whiteout).

The chain is built from busybox with 200 such steps, each on the previous step's image, with the default
EngineConfig (squash_at=64, so the engine squashes long chains on its own; the layer count of each image is
printed). Then the step is timed as sibling runs from the images at depth 1, 50 and 200, round-robin over the
depths so that noise hits them alike; siblings are committed like any step but not built upon.
The depth-1 step is the baseline. Goal: depth-200 step <= 1.2x the depth-1 step.
"""

from __future__ import annotations

import asyncio
import sys
import time

from common import header, median, ms, spread, temp_engine, timed, verdict

from contree_tui.engine.models import Image

DEPTHS = (1, 50, 200)
SAMPLES = 15
GOAL = 1.2


def step_body(image: Image, n: int) -> dict[str, object]:
    """The step that takes `image` (depth n) to depth n+1."""
    return {"image": image.uuid, "shell": True,
            "command": f"echo step{n + 1} >> /etc/motd && touch /root/step{n + 1} && rm -f /root/step{n}"}


async def main() -> int:
    header("bench_chain: step cost at chain depth 1 / 50 / 200")
    async with temp_engine() as bench:
        engine = bench.engine
        image = await engine.ensure_busybox()
        for _ in range(3):  # warm-up
            await timed({**step_body(image, 0), "disposable": True}, engine)
        at_depth: dict[int, Image] = {}
        build: list[float] = []
        squashes = 0
        started = time.perf_counter()
        for n in range(max(DEPTHS)):
            elapsed, op = await timed(step_body(image, n), engine)
            build.append(elapsed)
            previous, image = image, engine.store.get_image(op.result_image_uuid or "")
            squashes += len(image.layers) < len(previous.layers)
            if n + 1 in DEPTHS:
                at_depth[n + 1] = image
        total = time.perf_counter() - started
        slowest = max(range(len(build)), key=build.__getitem__)
        print(f"built {len(build)} steps in {total:.2f} s: median {ms(median(build))}/step, "
              f"slowest {ms(build[slowest])} (step {slowest + 1}); "
              f"{squashes} squashes (squash_at={engine.config.squash_at})")

        samples: dict[int, list[float]] = {d: [] for d in DEPTHS}
        sibling_layers: dict[int, int] = {}
        for _ in range(SAMPLES):
            for depth in DEPTHS:
                elapsed, op = await timed(step_body(at_depth[depth], depth), engine)
                samples[depth].append(elapsed)
                sibling_layers[depth] = len(engine.store.get_image(op.result_image_uuid or "").layers)
        # Sanity: the depth-200 view is what 200 steps produce.
        _, op = await timed({"image": at_depth[200].uuid, "shell": True, "disposable": True,
                             "command": "wc -l < /etc/motd; ls /root"}, engine)
        view = op.result["stdout"]["value"].split() if op.result else []
        if view != ["200", "step200"]:
            print(f"warning: unexpected view at depth 200: {view}")

    for depth in DEPTHS:
        print(f"depth {depth:>3} (image has {len(at_depth[depth].layers):>2} layers, its child "
              f"{sibling_layers[depth]:>2}): {spread(samples[depth])} per step")
    ratio = median(samples[200]) / median(samples[1])
    print(f"ratio depth50/depth1   : {median(samples[50]) / median(samples[1]):.2f}x")
    print(f"ratio depth200/depth1  : {ratio:.2f}x (goal <= {GOAL:g}x: {verdict(ratio <= GOAL)})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
