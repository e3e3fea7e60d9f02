"""A finished run's writable layer becomes its child image: rename the upper dir into layers/, write the
image row, and squash chains that grow deep.

The image row is written only once its layer is in place, so a crash never leaves a row without a layer.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

from contree_tui.engine import layers as layerfs
from contree_tui.engine.models import EngineError, Image, SpawnRequest
from contree_tui.engine.store import Store

KEEP_ON_TOP = 8  # the newest layers stay separate so siblings keep sharing them


class RunCommit:
    def __init__(self, store: Store, layers_dir: str, scratch_dir: str, squash_at: int) -> None:
        self.store = store
        self._layers_dir, self._scratch_dir = layers_dir, scratch_dir
        self.squash_at = squash_at

    async def commit(self, op_uuid: str, request: SpawnRequest, image: Image, run_dir: str) -> tuple[str, int]:
        """Turn the run's upper dir into the child image's top layer (a rename), or reuse the source image
        when nothing changed; returns the result image's UUID and the bytes the run added."""
        upper = f"{run_dir}/upper"
        with os.scandir(upper) as entries:
            changed = any(True for _ in entries)
        # Most runs change nothing or little; a thread hop costs more than scanning an empty upper.
        scan = await asyncio.to_thread(layerfs.scan_upper, upper) if changed else layerfs.UpperScan(0, 0)
        if scan.size > request.max_layer_bytes:
            raise EngineError(f"the run wrote {scan.size} bytes, more than max_layer_bytes "
                              f"({request.max_layer_bytes}); nothing was committed")
        env, workdir = result_env(request, image), image.workdir
        if request.preserve_cwd:
            workdir = request.cwd or image.workdir or "/"
        if scan.empty and env == image.env and workdir == image.workdir:
            return image.uuid, 0
        chain = image.layers
        if not scan.empty:
            layer = layerfs.new_layer_id()
            os.rename(upper, f"{self._layers_dir}/{layer}")
            layerfs.fsync_dir(self._layers_dir)
            chain = await self.maybe_squash((*image.layers, layer))
        child = Image(uuid=str(uuid.uuid4()), created_at=time.time(), layers=chain, parent=image.uuid,
                      operation_uuid=op_uuid, env=env, workdir=workdir, size=image.size + scan.size)
        self.store.add_image(child)
        return child.uuid, scan.size

    async def maybe_squash(self, chain: tuple[str, ...]) -> tuple[str, ...]:
        """Keep chains far below overlay's 500-layer limit: merge everything between the base layer and the
        newest few into one layer of hard links. Content is unchanged; the merge is cached for siblings."""
        if len(chain) <= self.squash_at:
            return chain
        # The result is base + merged + top, so at most squash_at - 2 stay on top. With a low squash_at,
        # a fixed KEEP_ON_TOP would leave nothing to merge and put the base in twice (overlay: ELOOP).
        keep = max(0, min(KEEP_ON_TOP, self.squash_at - 2))
        split = len(chain) - keep  # not chain[-keep:]: that is the whole chain when keep is 0
        base, middle, top = chain[0], chain[1:split], chain[split:]
        if len(middle) < 2:
            return chain  # merging one layer into one layer gains nothing
        layer = self.store.squashed_layer(middle)
        if layer is None:
            layer = layerfs.new_layer_id()
            scratch = f"{self._scratch_dir}/squash-{layer}"
            await asyncio.to_thread(layerfs.squash_layers, [f"{self._layers_dir}/{x}" for x in middle], scratch)
            os.rename(scratch, f"{self._layers_dir}/{layer}")
            layerfs.fsync_dir(self._layers_dir)
            self.store.record_squash(middle, layer)
        return (base, layer, *top)


def result_env(request: SpawnRequest, image: Image) -> dict[str, str]:
    """The child image's env: the source image's, or with preserve_env, the run's env applied to it."""
    if not request.preserve_env:
        return image.env
    env = dict(image.env)
    for key, value in (request.raw.get("env") or {}).items():
        if value in (None, ""):
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env
