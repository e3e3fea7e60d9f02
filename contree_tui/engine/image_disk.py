"""Images on disk: what they cost (df), what one image added (the inspect extension), and deleting one.

Deleting is crash-safe in two steps. First the rows go in one sqlite transaction (the image, its tags, the
squash cache entries no image uses any more), and the layers nothing references any more are computed in
it. Then each such layer dir is renamed out of layers/ into runs/ (atomic: a read never sees half a layer)
and removed in a thread. A crash after the transaction leaves unreferenced dirs in layers/ or trash in
runs/, and the next start removes both (Engine._sweep_disk); a crash before it changes nothing.

Children never break: every image holds its whole layer chain (Image.layers), so a child keeps the layers it
shares with a deleted parent, and only layers no remaining image lists are removed. The API has no parent
field; a child whose parent is gone simply becomes a root of the client's lineage tree.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable

from contree_tui.engine import layers as layerfs
from contree_tui.engine.disk_space import free_bytes
from contree_tui.engine.disk_usage import LayerSizes, added_layers, disk_usage, physical_bytes
from contree_tui.engine.image_reads import ImageReads
from contree_tui.engine.layer_content import LayerContents
from contree_tui.engine.models import Conflict, Image
from contree_tui.engine.state_dir import StateDir
from contree_tui.engine.store import Store


class ImageDisk:
    def __init__(self, state: StateDir, store: Store, reads: ImageReads, forget_image: Callable[[str], object],
                 pinned_layers: Callable[[], set[str]]) -> None:
        self.state, self.store, self.reads = state, store, reads
        self._forget_image = forget_image  # drops the engine's cached copy of a deleted image (spawn's cache)
        self._pinned_layers = pinned_layers  # layers imports in progress hold (reused ones included)
        self._layers_dir, self._runs_dir = str(state.layers), str(state.runs)
        self.sizes = LayerSizes(self._layers_dir)
        self.contents = LayerContents(self._layers_dir)
        self._removals: set[asyncio.Future[None]] = set()

    # -- df and the inspect extension ----------------------------------------------------------------------
    async def usage(self) -> dict[str, object]:
        images = self.store.all_images()
        on_disk = sorted(entry.name for entry in os.scandir(self._layers_dir) if entry.is_dir(follow_symlinks=False))
        wanted = set(on_disk) | {layer for image in images for layer in image.layers}
        sizes = await asyncio.to_thread(self.sizes.measure, sorted(wanted))
        st = os.statvfs(self.state.root)
        return disk_usage(images, sizes, on_disk, self.store.squash_cache(), free_bytes(str(self.state.root)),
                          st.f_blocks * st.f_frsize)

    async def image_extension(self, image: Image) -> dict[str, object]:
        """`x_engine` of GET /v1/inspect/{uuid}/: sizes (du bytes), layer count, env, workdir and user (an
        import's config WorkingDir and User, which the engine records but does not apply)."""
        parent = self.store.find_image(image.parent) if image.parent else None
        added = added_layers(image, parent, self.store.squash_cache())
        sizes = await asyncio.to_thread(self.sizes.measure, image.layers)
        content = await asyncio.to_thread(self.contents.total, added)
        return {"size": physical_bytes(sizes[layer] for layer in added),
                "total_size": physical_bytes(sizes.values()), "layers": len(image.layers),
                "content_bytes": content.bytes, "files": content.files, "removed": content.removed,
                "env": dict(image.env), "workdir": image.workdir or image.config_workdir, "user": image.user}

    # -- delete ---------------------------------------------------------------------------------------------
    def check_deletable(self, image: Image) -> None:
        """Conflict (409) when the image is tagged, is the source of an active operation, or is being read."""
        if image.tags:
            raise Conflict(f"image {image.uuid} is tagged {', '.join(image.tags)}: remove its tags first "
                           f"(DELETE /v1/images/{image.uuid}/tag)")
        for op in self.store.active_operations():
            if op.image_uuid == image.uuid:
                raise Conflict(f"image {image.uuid} is in use by operation {op.uuid} ({op.status.value})")
        if self.reads.reading.get(image.uuid):
            raise Conflict(f"image {image.uuid} is being read (an inspect or export is in progress); retry when "
                           "it ends")

    async def delete(self, uuid: str) -> list[str]:
        """Delete the image and the layers only it referenced; returns those layers' ids."""
        image = self.store.get_image(uuid)
        self.check_deletable(image)
        # From here to the renames nothing awaits: no spawn or read can start on the image in between.
        orphans = sorted(self.store.delete_image(image.uuid, keep=self._pinned_layers()))
        self._forget_image(image.uuid)
        moved = []
        for layer in orphans:
            trash = f"{self._runs_dir}/deleted-{layer}"
            try:
                os.rename(f"{self._layers_dir}/{layer}", trash)
            except FileNotFoundError:
                continue  # removed already (an earlier delete interrupted after its rename)
            moved.append(trash)
        if moved:
            layerfs.fsync_dir(self._layers_dir)
        self.sizes.forget(orphans)
        self.contents.forget(orphans)
        removal = asyncio.ensure_future(asyncio.to_thread(_remove_all, moved))
        self._removals.add(removal)
        removal.add_done_callback(self._removals.discard)
        await asyncio.shield(removal)
        return orphans

    async def drain(self) -> None:
        """Wait for removals in flight (Engine.close)."""
        if self._removals:
            await asyncio.gather(*self._removals, return_exceptions=True)


def _remove_all(paths: list[str]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)

