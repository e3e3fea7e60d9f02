"""The embedded engine as a library: images as layer chains, instance operations, event logs, files.

Everything is driven from one asyncio event loop; blocking file work (scans of a finished upper dir,
squashes, deletes) goes to threads. The HTTP layer (engine/http) is a thin translation on top of this.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

from contree_tui.engine import layers as layerfs
from contree_tui.engine.admission import Admission
from contree_tui.engine.config import EngineConfig
from contree_tui.engine.disk_space import require_free
from contree_tui.engine.event_log import EventLog
from contree_tui.engine.file_store import FileStore
from contree_tui.engine.grep import GrepQuery
from contree_tui.engine.image_disk import ImageDisk
from contree_tui.engine.image_import import KIND as IMPORT_KIND
from contree_tui.engine.image_import import ImageImports
from contree_tui.engine.image_reads import ImageReads
from contree_tui.engine.image_sources.tar_members import TarIndexer
from contree_tui.engine.instance import InstanceRun
from contree_tui.engine.layer_cap import unmount_leftovers
from contree_tui.engine.models import EngineError, Event, Image, NotFound, Operation, OperationStatus, StoredFile
from contree_tui.engine.oci_layer import layer_from_tarball
from contree_tui.engine.privilege import running_rootless
from contree_tui.engine.rootfs_import import MAX_IMPORTS, import_helpers
from contree_tui.engine.rootless_checks import require_engine_privilege
from contree_tui.engine.runs import InstanceRuns
from contree_tui.engine.sandbox.helper import HelperProcess, HelperSet
from contree_tui.engine.sandbox.keepers import KeeperPool
from contree_tui.engine.sandbox.limit_plan import plan_limits
from contree_tui.engine.sandbox.limits import CgroupPool
from contree_tui.engine.sandbox.network import write_network_layer
from contree_tui.engine.sandbox.userns import SandboxIds, SandboxUsers, open_sandbox_users
from contree_tui.engine.spawn_request import TAG_RE, UUID_RE
from contree_tui.engine.state_dir import StateDir
from contree_tui.engine.store import Store, iso_now

BUSYBOX_TAG = "busybox:latest"
RUN_IMAGE_CACHE = 1024


class Engine:
    """Open with `await Engine.open(path)`; one engine owns a state directory at a time."""

    def __init__(self, state: StateDir, config: EngineConfig) -> None:
        self.state = state
        self.config = config
        self.store = Store(state.database)
        self.events = EventLog(self.store)
        name = f"contree-tui-{state.id}"
        self.limit_plan = plan_limits(config.limits, cgroups=config.cgroups, max_timeout=config.max_timeout,
                                      engine_group=name)
        self.cgroups = CgroupPool(name, self.limit_plan.cgroup_version, self.limit_plan.cgroup_base)
        self.keepers = KeeperPool(self.cgroups, config.limits)
        self.admission = Admission(config.total_memory_budget(), config.max_concurrent_runs)
        self._lock_fd: int | None = None
        self.users: SandboxUsers | None = None
        # Plain strings for the paths every run needs: pathlib objects cost the event loop more than the
        # syscalls they name.
        self._layers_dir, self._runs_dir = str(state.layers), str(state.runs)
        self._scaffold, self._blobs_dir = str(state.scaffold), str(state.blobs)
        self._run_images: dict[str, Image] = {}  # by UUID, oldest first (see _image_to_run)
        self.helpers = HelperSet()  # the confined inspect helpers (list, read, archive, grep)
        self.importers = import_helpers()  # the confined helpers that extract rootfs tarballs
        # Every helper mounts its image here, in a mount namespace of its own: the host sees an empty dir.
        self._inspect_root = f"{state.root}/inspect-root"  # not in runs/: that holds runs' scratch only
        self.reads = ImageReads(self.helpers, self.lowers_for, self._inspect_root)
        self.files = FileStore(self.store, self._blobs_dir, config.min_free_bytes)
        self.instances = InstanceRuns(state, config, self.store, self.events, self.cgroups, self.keepers,
                                      self.admission, self.lowers_for, self.limit_plan)
        self._network_layer = self.instances.network_layer
        # Import operations (image_import.py): their layers are extracted by helpers of their own, at most
        # MAX_IMPORTS at once; one waits for a slot as long as its import's timeout lets it.
        self.extractors = HelperSet(max_live=MAX_IMPORTS, slot_wait=3600.0, what="layer extractions")
        self.imports = ImageImports(state, config, self.store, self.events, self.extractors,
                                    self.instances.commits.maybe_squash,
                                    TarIndexer(self.helpers, self._inspect_root))
        self.disk = ImageDisk(state, self.store, self.reads, lambda uuid: self._run_images.pop(uuid, None),
                              self.imports.pinned_layers)

    @property
    def network_available(self) -> bool:
        """pasta is installed: runs may have networking (sandbox/network.py)."""
        return self.instances.network_available

    @network_available.setter
    def network_available(self, value: bool) -> None:
        self.instances.network_available = value

    # -- lifecycle ----------------------------------------------------------------------------------
    @classmethod
    async def open(cls, path: str | Path | None = None, config: EngineConfig | None = None) -> Engine:
        require_engine_privilege()  # root, or the uid 0 of a normal user's namespace (rootless_entry.py)
        try:
            state = StateDir.create(path)
        except OSError as exc:
            raise EngineError(f"cannot use the engine state directory: {exc}", status=503) from None
        lock_fd = os.open(state.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise EngineError(f"another engine is already using {state.root}", status=409) from None
        try:
            engine = cls(state, config or EngineConfig())
        except sqlite3.DatabaseError as exc:  # a damaged state dir: say so, not a traceback in engine.log
            os.close(lock_fd)
            raise EngineError(f"the engine's database {state.database} cannot be read ({exc}): the state "
                              f"directory is damaged; move {state.root} aside to start afresh", status=503) from None
        engine._lock_fd = lock_fd
        write_network_layer(engine._network_layer)
        await engine._recover()
        engine.cgroups.limit_total(engine.admission.memory_budget)
        os.makedirs(engine._inspect_root, exist_ok=True)
        ids = SandboxIds.rootless() if running_rootless() else engine.config.sandbox_ids
        if ids is not None:
            try:
                engine.users = open_sandbox_users(ids, engine._idmapped_dirs(), str(state.root))
            except OSError as exc:
                await engine.close()
                why = ("" if running_rootless() else "; idmapped mounts need Linux >= 5.12 and a state dir on ext4, "
                       "xfs, btrfs or tmpfs")
                raise EngineError(f"cannot give sandboxes their own user ids ({exc}){why}", status=503) from None
        # helpers run as the sandboxes' root
        engine.helpers.users = engine.importers.users = engine.extractors.users = engine.users
        try:
            engine.keepers.start(engine.users)
        except EngineError:
            await engine.close()
            raise
        return engine

    async def stop_runs(self, reason: str = "engine stopped") -> None:
        """Kill every running sandbox and let each operation end (FAILED with `reason`); runs still waiting
        for admission end FAILED too, without starting."""
        await self.instances.stop_runs(reason)

    async def close(self) -> None:
        await self.imports.stop_all("the engine stopped while this import was running")
        await self.stop_runs()
        await self.instances.layer_watch.close()
        await self.helpers.close()
        await self.importers.close()
        await self.extractors.close()
        self.keepers.close()
        await self.instances.drain()
        await self.disk.drain()
        if self.users is not None:  # after the runs' tmpfs uppers are unmounted (under its bind)
            self.users.close()
            self.users = None
        self.cgroups.remove_all()
        self.events.flush()
        self.store.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _recover(self) -> None:
        """After a crash: runs left active become FAILED with a reason, scratch and orphan layers go."""
        for op in self.store.active_operations():
            reason = "the engine stopped while this operation was running (engine restarted)"
            if op.kind != IMPORT_KIND:  # an import has no processes to shut down
                self.events.emit(op.uuid, "shutdown", 0, {"stopped_at": iso_now(), "reason": "signal"})
            finished = time.time()
            self.store.update_operation(op.uuid, status=OperationStatus.FAILED, error=reason, finished_at=finished)
            # The completion's duration is the record's (serialize.duration: started → finished): it said 0,
            # so the TUI (which reads the event) showed 0.00s where `contree-tui ops` (the record) said 4.3s.
            elapsed = finished - op.started_at if op.started_at is not None else 0
            self.events.emit_completion(op.uuid, "FAILED", None, reason, 0, max(0.0, elapsed))
            self.events.end(op.uuid)
        self.cgroups.remove_all()
        unmount_leftovers(self._runs_dir)
        await asyncio.to_thread(self._sweep_disk)

    def _sweep_disk(self) -> None:
        for entry in self.state.runs.iterdir():
            shutil.rmtree(entry, ignore_errors=True)
        self.imports.sweep()
        referenced = self.store.referenced_layers()
        orphans = [entry for entry in self.state.layers.iterdir() if entry.name not in referenced]
        # A layer an interrupted import had finished, recorded by diff id but in no image: forgotten first,
        # so no later import reuses a directory that is about to go.
        self.store.forget_layer_digests(entry.name for entry in orphans)
        for entry in orphans:
            shutil.rmtree(entry, ignore_errors=True)

    # -- images -------------------------------------------------------------------------------------
    def resolve_image(self, ref: str) -> Image:
        """A UUID, `tag:<tag>`, or a bare tag."""
        if not isinstance(ref, str) or not ref:
            raise EngineError("image: required, a UUID or tag:<tag>")
        if UUID_RE.match(ref):
            return self.store.get_image(ref)
        tag = ref[4:] if ref.startswith("tag:") else ref
        if not TAG_RE.match(tag):
            raise EngineError(f"image: {ref!r} is neither a UUID nor a valid tag")
        return self.store.image_by_tag(tag)

    def _image_to_run(self, ref: Any) -> Image:
        """resolve_image for spawns, with images by UUID remembered: what a run needs of an image (layers,
        env, workdir, size) never changes, and a busy engine runs on the same few images over and over."""
        image = self._run_images.get(ref) if isinstance(ref, str) else None
        if image is None:
            image = self.resolve_image(ref)
            if ref == image.uuid:
                if len(self._run_images) >= RUN_IMAGE_CACHE:
                    del self._run_images[next(iter(self._run_images))]
                self._run_images[ref] = image
        return image

    def layer_path(self, layer_id: str) -> str:
        return f"{self._layers_dir}/{layer_id}"

    def _idmapped_dirs(self) -> list[str]:
        """What a sandbox mounts from the state dir, shown to keepers with sandbox ids (userns.py)."""
        return [self._layers_dir, self._scaffold, self._runs_dir, self._network_layer]

    def lowers_for(self, image: Image) -> list[str]:
        """Overlay lowers, topmost first: the scaffold (mountpoints) over the image's layers."""
        return [self._scaffold, *(f"{self._layers_dir}/{layer}" for layer in reversed(image.layers))]

    async def import_rootfs(self, source: str | Path, *, tag: str | None = None) -> Image:
        """Create a root image from a local rootfs directory or tarball (.tar, .tar.gz, ...)."""
        source = Path(source)
        if tag is not None and not TAG_RE.match(tag):
            raise EngineError(f"tag: {tag!r} is not a valid tag")
        layer = layerfs.new_layer_id()
        scratch = self.state.runs / f"import-{layer}"
        if source.is_dir():
            await asyncio.to_thread(layerfs.layer_from_directory, str(source), str(scratch))
        elif source.is_file():
            require_free(self._layers_dir, self.config.min_free_bytes, "import")
            await layer_from_tarball(self.importers, source, scratch, max_bytes=self.config.max_layer_bytes,
                                     timeout=self.config.import_timeout)
        else:
            raise EngineError(f"{source}: no such rootfs directory or tarball", status=404)
        return await self._commit_root_layer(scratch, layer, tag)

    async def _commit_root_layer(self, scratch: Path, layer: str, tag: str | None) -> Image:
        os.rename(scratch, self.state.layers / layer)
        layerfs.fsync_dir(self.state.layers)
        size = await asyncio.to_thread(lambda: layerfs.scan_upper(self.layer_path(layer)).size)
        image = Image(uuid=str(uuid.uuid4()), created_at=time.time(), layers=(layer,),
                      env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
                      tags=(tag,) if tag else (), size=size)
        self.store.add_image(image)
        return image

    async def ensure_busybox(self) -> Image:
        """The built-in `busybox:latest` (Debian's busybox-static), built on first use in ~20 ms."""
        try:
            return self.store.image_by_tag(BUSYBOX_TAG)
        except NotFound:
            pass
        busybox = shutil.which("busybox") or "/bin/busybox"
        if not os.path.exists(busybox):
            raise EngineError("busybox:latest needs Debian's busybox-static: apt-get install busybox-static",
                              status=503)
        layer = layerfs.new_layer_id()
        scratch = self.state.runs / f"import-{layer}"
        await asyncio.to_thread(layerfs.build_busybox_rootfs, busybox, str(scratch))
        return await self._commit_root_layer(scratch, layer, BUSYBOX_TAG)

    # -- disk (engine/image_disk.py) -------------------------------------------------------------------
    async def delete_image(self, uuid: str) -> list[str]:
        """Delete an untagged image no active operation or read uses; returns the layer ids it freed."""
        return await self.disk.delete(uuid)

    async def disk_usage(self) -> dict[str, Any]:
        return await self.disk.usage()

    # -- inspect (engine/image_reads.py: confined helpers) --------------------------------------------
    async def open_in_image(self, image: Image, operation: str, path: str,
                            query: GrepQuery | None = None) -> tuple[dict[str, Any], HelperProcess]:
        return await self.reads.open_in_image(image, operation, path, query)

    async def list_directory(self, image: Image, path: str) -> dict[str, Any]:
        return await self.reads.list_directory(image, path)

    async def read_file(self, image: Image, path: str) -> bytes:
        return await self.reads.read_file(image, path)

    async def archive(self, image: Image, path: str) -> bytes:
        return await self.reads.archive(image, path)

    async def grep(self, image: Image, query: GrepQuery) -> dict[str, Any]:
        """Search file contents (the API's GrepResult); the query is validated first (EngineError, 400)."""
        return await self.reads.grep(image, query)

    # -- files (engine/file_store.py) ---------------------------------------------------------------
    def add_file(self, data: bytes) -> StoredFile:
        return self.files.add_file(data)

    async def add_file_stream(self, chunks: AsyncIterable[bytes]) -> StoredFile:
        return await self.files.add_file_stream(chunks)

    async def add_files_framed(self, chunks: AsyncIterable[bytes]) -> list[StoredFile]:
        return await self.files.add_files_framed(chunks)

    # -- operations (engine/runs.py) -------------------------------------------------------------------
    async def spawn(self, body: dict[str, Any]) -> Operation:
        """Validate a spawn request, record the operation and start it; returns at once."""
        if not isinstance(body, dict):
            raise EngineError("request body must be a JSON object")
        ref = body.get("image")
        try:
            image = self._image_to_run(ref)
        except NotFound:
            # 400, not 404: the spec lists 400/401/403 for POST /instances (404 would say the route is missing)
            what = f"no image tagged {ref.removeprefix('tag:')!r}" if not UUID_RE.match(ref) else f"no image {ref}"
            raise EngineError(f"image: {what} on this engine (GET /images lists them)") from None
        return await self.instances.spawn(body, image)

    # -- imports (engine/image_import.py) ------------------------------------------------------------
    def import_image(self, body: dict[str, Any]) -> Operation:
        """Validate an ImageImportRequest (EngineError 400/501), record the operation and start it; returns at
        once (a nearly full disk fails the operation: official clients retry a 507 without end)."""
        return self.imports.start(body)

    # -- events -------------------------------------------------------------------------------------
    async def follow(self, op_uuid: str, *, after: int = 0, spid: int | None = None,
                     follow: bool = True) -> AsyncIterator[Event]:
        """The operation's events after `after`; with follow, waits for more until `completion`."""
        async for batch in self.events.follow_batches(op_uuid, after=after, spid=spid, follow=follow):
            for event in batch:
                yield event

    def follow_batches(self, op_uuid: str, *, after: int = 0, spid: int | None = None, follow: bool = True,
                       idle: float | None = None) -> AsyncIterator[list[Event]]:
        """See EventLog.follow_batches."""
        return self.events.follow_batches(op_uuid, after=after, spid=spid, follow=follow, idle=idle)

    async def exec_process(self, op_uuid: str, body: dict[str, Any]) -> int:
        """Start another process (an ExecSpec) inside a running instance; returns its spid (≥ 2)."""
        return await self.instances.exec_process(op_uuid, body)

    def is_starting(self, op_uuid: str) -> bool:
        """The operation is being run by this engine: its events are coming (follow waits for them)."""
        return self.instances.is_starting(op_uuid) or self.imports.is_running(op_uuid)

    def instance_run(self, op_uuid: str) -> InstanceRun | None:
        """The live run of an operation (its sandbox is up or starting), else None."""
        return self.instances.instance_run(op_uuid)

    async def wait(self, op_uuid: str) -> Operation:
        if self.imports.is_running(op_uuid):
            return await self.imports.wait(op_uuid)
        return await self.instances.wait(op_uuid)

    async def cancel(self, op_uuid: str) -> Operation:
        if self.imports.is_running(op_uuid):
            return await self.imports.cancel(op_uuid)
        return await self.instances.cancel(op_uuid)

    async def run(self, body: dict[str, Any]) -> Operation:
        """Spawn and wait: the convenience the tests and benchmarks use."""
        op = await self.spawn(body)
        return await self.wait(op.uuid)
