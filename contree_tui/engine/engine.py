"""The embedded engine as a library: images as layer chains, instance operations, event logs, files.

Everything is driven from one asyncio event loop; blocking file work (scans of a finished upper dir,
squashes, deletes) goes to threads. The HTTP layer (engine/http) is a thin translation on top of this.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from contree_tui.engine import layers as layerfs
from contree_tui.engine.admission import Admission, Withdrawn
from contree_tui.engine.disk_space import require_free
from contree_tui.engine.event_log import EventLog
from contree_tui.engine.exec_process import ExecRun
from contree_tui.engine.grep import GrepQuery
from contree_tui.engine.inspect import IDLE_SECONDS, open_in_image
from contree_tui.engine.instance import (
    InstanceRun,
    Verdict,
    command_line,
    injected_files,
    instance_result,
    masked_env,
)
from contree_tui.engine.layer_cap import (
    LayerWatch,
    layer_tmpfs_full,
    mount_layer_tmpfs,
    unmount_layer_tmpfs,
    unmount_leftovers,
)
from contree_tui.engine.models import (
    DEFAULT_MAX_LAYER_BYTES,
    Conflict,
    EngineError,
    Event,
    Image,
    NotFound,
    Operation,
    OperationStatus,
    SpawnRequest,
    StoredFile,
)
from contree_tui.engine.rootfs_import import DEFAULT_IMPORT_TIMEOUT, import_helpers, layer_from_tarball
from contree_tui.engine.sandbox.helper import HelperProcess, HelperSet
from contree_tui.engine.sandbox.keepers import KeeperPool
from contree_tui.engine.sandbox.launch import LaunchSpec
from contree_tui.engine.sandbox.limits import CgroupPool, Limits, detect_cgroup_version, rlimits_for
from contree_tui.engine.sandbox.network import MISSING, pasta_binary, write_network_layer
from contree_tui.engine.sandbox.nsenter import exec_in_sandbox
from contree_tui.engine.spawn_request import TAG_RE, UUID_RE, parse_spawn_request, stored_request
from contree_tui.engine.state_dir import StateDir
from contree_tui.engine.store import Store, iso_now

BUSYBOX_TAG = "busybox:latest"
# Overlay refuses more than 500 lower layers. Squash long before that: at depth 50 a full `find` was only
# ~25% slower than at depth 0, so 64 costs little and leaves room for the base and scaffold layers.
SQUASH_AT = 64
KEEP_ON_TOP = 8  # the newest layers stay separate so siblings keep sharing them
RUN_IMAGE_CACHE = 1024
UPLOAD_BATCH = 1 << 20  # bytes an upload gathers before one thread hop writes and hashes them
MAX_COLLECTED = 256 << 20  # the most an inspect call through this API gathers in memory (HTTP streams)


@dataclass(frozen=True)
class EngineConfig:
    limits: Limits = field(default_factory=Limits)
    default_timeout: float = 600.0
    max_timeout: float = 3600.0
    squash_at: int = SQUASH_AT
    cgroups: bool = True
    # The largest resources_limits.max_layer_bytes a request may ask for (the spec's default, 12 GiB).
    max_layer_bytes: int = DEFAULT_MAX_LAYER_BYTES
    max_upload_bytes: int = 4 << 30  # one POST /v1/files body (streamed to disk)
    # A rootfs tarball's extraction (a confined helper, rootfs_import.py) is killed after this many seconds;
    # its files together, and each one, may hold at most max_layer_bytes.
    import_timeout: float = DEFAULT_IMPORT_TIMEOUT
    # Below this much free space on the state dir's filesystem, spawns and uploads are refused (507) and
    # running sandboxes that write are stopped: sqlite needs room for the events and status rows.
    min_free_bytes: int = 1 << 30
    # Admission (engine/admission.py): runs at once, and the memory all runs together may use (None: 3/4
    # of the host's MemTotal, also the kernel's hard limit on the engine's parent cgroup). Each run
    # reserves run_memory_reserve of it (None: a quarter of the per-run cap, 1 GiB by default: most runs
    # use far less than their cap, and reserving the whole 4 GiB would admit only 4 runs on a 23 GB host).
    max_concurrent_runs: int = 64
    memory_budget: int | None = None
    run_memory_reserve: int | None = None

    def total_memory_budget(self) -> int:
        return self.memory_budget if self.memory_budget is not None else host_memory() * 3 // 4

    def memory_reserve(self) -> int:
        return self.run_memory_reserve if self.run_memory_reserve is not None else self.limits.memory_bytes // 4


def host_memory() -> int:
    """MemTotal in bytes."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class Engine:
    """Open with `await Engine.open(path)`; one engine owns a state directory at a time."""

    def __init__(self, state: StateDir, config: EngineConfig) -> None:
        self.state = state
        self.config = config
        self.store = Store(state.database)
        self._runs: dict[str, InstanceRun] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.events = EventLog(self.store)
        self._cancel_requested: set[str] = set()
        version = detect_cgroup_version() if config.cgroups else None
        self.cgroups = CgroupPool(f"contree-tui-{state.id}", version)
        self.keepers = KeeperPool(self.cgroups, config.limits)
        self.admission = Admission(config.total_memory_budget(), config.max_concurrent_runs)
        self.layer_watch = LayerWatch(str(state.layers), config.min_free_bytes, self._stop_run)
        self._lock_fd: int | None = None
        self._background: set[asyncio.Future[None]] = set()
        # Plain strings for the paths every run needs: pathlib objects cost the event loop more than the
        # syscalls they name.
        self._layers_dir, self._runs_dir = str(state.layers), str(state.runs)
        self._scaffold, self._blobs_dir = str(state.scaffold), str(state.blobs)
        self._trash: list[str] = []  # scratch dirs waiting for _empty_trash
        self._sweep: asyncio.Future[None] | None = None
        self._run_images: dict[str, Image] = {}  # by UUID, oldest first (see _image_to_run)
        # Networking needs pasta (sandbox/network.py); without it, runs with networking on are refused.
        self.network_available = pasta_binary() is not None
        self._network_layer = f"{state.root}/network"  # /etc/resolv.conf for networked runs
        self.helpers = HelperSet()  # the confined inspect helpers (list, read, archive, grep)
        self.importers = import_helpers()  # the confined helpers that extract rootfs tarballs
        # Every helper mounts its image here, in a mount namespace of its own: the host sees an empty dir.
        self._inspect_root = f"{state.root}/inspect-root"  # not in runs/: that holds runs' scratch only

    # -- lifecycle ----------------------------------------------------------------------------------
    @classmethod
    async def open(cls, path: str | Path | None = None, config: EngineConfig | None = None) -> Engine:
        if os.geteuid() != 0:
            raise EngineError(
                "the embedded engine needs root: it mounts overlay layers and creates mount, pid and network "
                "namespaces, and rootless mode (user namespaces with overlay userxattr) is not available yet. "
                "Run it as root, or point contree-tui at a hosted Contree with --profile.", status=503)
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
        engine = cls(state, config or EngineConfig())
        engine._lock_fd = lock_fd
        write_network_layer(engine._network_layer)
        await engine._recover()
        engine.cgroups.limit_total(engine.admission.memory_budget)
        os.makedirs(engine._inspect_root, exist_ok=True)
        engine.keepers.start()
        return engine

    async def stop_runs(self, reason: str = "engine stopped") -> None:
        """Kill every running sandbox and let each operation end (FAILED with `reason`); runs still waiting
        for admission end FAILED too, without starting."""
        for op_uuid in self.admission.queued():
            self.admission.withdraw(op_uuid, reason)
        for run in list(self._runs.values()):
            run.kill(reason)
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        await self.stop_runs()
        await self.layer_watch.close()
        await self.helpers.close()
        await self.importers.close()
        self.keepers.close()
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
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
            self.events.emit(op.uuid, "shutdown", 0, {"stopped_at": iso_now(), "reason": "signal"})
            self.store.update_operation(op.uuid, status=OperationStatus.FAILED, error=reason,
                                        finished_at=time.time())
            self.events.emit_completion(op.uuid, "FAILED", None, reason, 0, 0)
            self.events.end(op.uuid)
        self.cgroups.remove_all()
        unmount_leftovers(self._runs_dir)
        await asyncio.to_thread(self._sweep_disk)

    def _sweep_disk(self) -> None:
        for entry in self.state.runs.iterdir():
            shutil.rmtree(entry, ignore_errors=True)
        referenced = self.store.referenced_layers()
        for entry in self.state.layers.iterdir():
            if entry.name not in referenced:
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

    # -- inspect (confined helpers, see engine/inspect.py and sandbox/helper.py) ------------------------
    async def open_in_image(self, image: Image, operation: str, path: str,
                            query: GrepQuery | None = None) -> tuple[dict[str, Any], HelperProcess]:
        """Start a confined `operation` (list, list-text, read, archive, grep) on `path`; its header and the
        helper, whose payload is read with `helper.chunks(IDLE_SECONDS)` (or dropped with close())."""
        if operation == "grep":
            assert query is not None
            query = query.validate()
            path = query.paths[0]
        return await open_in_image(self.helpers, self.lowers_for(image), self._inspect_root, operation, path, query)

    async def _collect(self, image: Image, operation: str, path: str, query: GrepQuery | None = None) -> bytes:
        _, helper = await self.open_in_image(image, operation, path, query)
        return await helper.read_all(MAX_COLLECTED, IDLE_SECONDS)

    async def list_directory(self, image: Image, path: str) -> dict[str, Any]:
        return json.loads(await self._collect(image, "list", path))

    async def read_file(self, image: Image, path: str) -> bytes:
        return await self._collect(image, "read", path)

    async def archive(self, image: Image, path: str) -> bytes:
        return await self._collect(image, "archive", path)

    async def grep(self, image: Image, query: GrepQuery) -> dict[str, Any]:
        """Search file contents (the API's GrepResult); the query is validated first (EngineError, 400)."""
        return json.loads(await self._collect(image, "grep", "/", query))

    # -- files --------------------------------------------------------------------------------------
    def add_file(self, data: bytes) -> StoredFile:
        digest = hashlib.sha256(data).hexdigest()
        blob = self.state.blobs / digest
        if not blob.exists():
            tmp = self.state.blobs / f".{digest}.{uuid.uuid4().hex}"
            tmp.write_bytes(data)
            os.chmod(tmp, 0o444)
            os.rename(tmp, blob)
        return self.store.add_file(str(uuid.uuid4()), digest, len(data))

    async def add_file_stream(self, chunks: AsyncIterable[bytes]) -> StoredFile:
        """add_file for a body that arrives in chunks: written to disk 1 MiB at a time (from a thread, with
        the hash), so memory holds at most one batch; a stream that fails leaves no file behind."""
        require_free(self._blobs_dir, self.config.min_free_bytes, "upload")
        tmp = f"{self._blobs_dir}/.upload.{uuid.uuid4().hex}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        digest, size, batch = hashlib.sha256(), 0, bytearray()

        def write(data: bytes) -> None:
            digest.update(data)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]

        try:
            async for chunk in chunks:
                batch += chunk
                if len(batch) >= UPLOAD_BATCH:
                    size += len(batch)
                    await asyncio.to_thread(write, bytes(batch))
                    batch.clear()
                    require_free(self._blobs_dir, self.config.min_free_bytes, "upload")
            size += len(batch)
            await asyncio.to_thread(write, bytes(batch))
            os.fchmod(fd, 0o444)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        name = digest.hexdigest()
        blob = f"{self._blobs_dir}/{name}"
        if os.path.exists(blob):
            os.unlink(tmp)
        else:
            os.rename(tmp, blob)
        return self.store.add_file(str(uuid.uuid4()), name, size)

    # -- operations ---------------------------------------------------------------------------------
    async def spawn(self, body: dict[str, Any]) -> Operation:
        """Validate a spawn request, record the operation and start it; returns at once."""
        if not isinstance(body, dict):
            raise EngineError("request body must be a JSON object")
        image = self._image_to_run(body.get("image"))
        request = parse_spawn_request(body, image.uuid, self.config.max_layer_bytes)
        if request.networking and not self.network_available:
            raise EngineError(MISSING)
        require_free(self._layers_dir, self.config.min_free_bytes, "spawn")
        timeout = request.timeout or self.config.default_timeout
        if timeout > self.config.max_timeout:
            raise EngineError(f"timeout: at most {self.config.max_timeout:g} s on this engine")
        request = replace(request, timeout=timeout)
        blobs = {f.file_uuid: self.store.file_by_uuid(f.file_uuid).sha256 for f in request.files}
        op = Operation(uuid=str(uuid.uuid4()), kind="instance", status=OperationStatus.PENDING,
                       created_at=time.time(), image_uuid=image.uuid,
                       request={**stored_request(body), "image": image.uuid, "timeout": timeout})
        self.store.add_operation(op)
        self.events.begin(op.uuid)
        self._tasks[op.uuid] = asyncio.create_task(self._run_instance(op.uuid, request, image, blobs))
        return op

    async def _run_instance(self, op_uuid: str, request: SpawnRequest, image: Image, blobs: dict[str, str]) -> None:
        waiting = self.admission.enter(op_uuid, self.config.memory_reserve())
        if waiting is not None:  # PENDING until there is room (the usual case does not wait)
            try:
                await waiting
            except Withdrawn as exc:
                self._end_unstarted(op_uuid, str(exc))
                return
        try:
            await self._admitted_run(op_uuid, request, image, blobs)
        finally:
            self.admission.leave(op_uuid)

    def _end_unstarted(self, op_uuid: str, reason: str) -> None:
        """A queued run taken out of line: CANCELLED when cancelled, else FAILED with the reason."""
        status = "CANCELLED" if reason == "cancelled" else "FAILED"
        self.events.update_operation(op_uuid, status=OperationStatus(status), error=reason, finished_at=time.time())
        self.events.emit(op_uuid, "shutdown", 0, {"stopped_at": iso_now(), "reason": "signal"})
        self.events.emit_completion(op_uuid, status, None, reason, 0, 0)
        self._tasks.pop(op_uuid, None)
        self._cancel_requested.discard(op_uuid)
        self.events.end(op_uuid)

    async def _admitted_run(self, op_uuid: str, request: SpawnRequest, image: Image, blobs: dict[str, str]) -> None:
        started = time.time()
        self.events.update_operation(op_uuid, status=OperationStatus.EXECUTING, started_at=started)
        self.events.emit(op_uuid, "init", 0, {"started_at": iso_now(), "runtime_path": "contree-tui-engine",
                                       "verbose": False, "init_pid": 1, "hostname": request.hostname})
        run_dir = f"{self._runs_dir}/{op_uuid}"  # made by the sandbox's keeper (or here, as a tmpfs)
        slot: str | None = None
        tmpfs = False
        try:
            if request.disposable:  # the cap is the tmpfs's size (engine/layer_cap.py)
                await asyncio.to_thread(mount_layer_tmpfs, run_dir, request.max_layer_bytes)
                tmpfs = True
            argv, env = command_line(request, image)
            keeper, slot = await self.keepers.take(self.config.limits)
            asyncio.get_running_loop().call_soon(self.keepers.refill)
            if request.networking and not keeper.networked:  # never the host's network namespace
                keeper.discard()
                raise EngineError("networking unavailable: pasta did not start a network for this sandbox")
            lowers = self.lowers_for(image)
            if request.networking:
                lowers.insert(0, self._network_layer)
            spec = LaunchSpec(
                lowers=lowers, upper=f"{run_dir}/upper", work=f"{run_dir}/work",
                merged=f"{run_dir}/merged", argv=argv, env=env,
                cwd=request.cwd or image.workdir or "/", uid=request.uid, gid=request.gid,
                hostname=request.hostname, network=request.networking,
                files=injected_files(request, blobs), blob_dir=self._blobs_dir,
                rlimits=rlimits_for(self.config.limits, request.max_layer_bytes, cgroups=slot is not None),
            )
            run = InstanceRun(self.events, op_uuid, request, image, run_dir)
            run.cgroup_procs = self.cgroups.procs_files(slot) if slot is not None else []
            self._runs[op_uuid] = run
            if op_uuid in self._cancel_requested:  # cancelled before its sandbox existed
                run.kill("cancelled")
            if not tmpfs:
                self.layer_watch.watch(op_uuid, spec.upper, request.max_layer_bytes)
            verdict = await run.run(spec, keeper.start)
            self.layer_watch.unwatch(op_uuid)
            # The tmpfs is unmounted in `finally`, after the waiters have their result.
            self._judge_limits(verdict, request, slot, tmpfs and layer_tmpfs_full(run_dir))
            await self._finish(op_uuid, request, image, verdict, run_dir, time.time() - started)
        except Exception as exc:  # noqa: BLE001 - the operation must end, whatever broke
            self.events.update_operation(op_uuid, status=OperationStatus.FAILED, error=f"engine error: {exc}",
                                        finished_at=time.time())
            self.events.emit(op_uuid, "shutdown", 0, {"stopped_at": iso_now(), "reason": "spawn_failed"})
            self.events.emit_completion(op_uuid, "FAILED", None, f"engine error: {exc}", 0, time.time() - started)
        finally:
            self.layer_watch.unwatch(op_uuid)
            if tmpfs:  # before the slot is reused: the tmpfs's pages are charged to it
                await asyncio.to_thread(unmount_layer_tmpfs, run_dir)
            self._runs.pop(op_uuid, None)
            self._tasks.pop(op_uuid, None)
            self._cancel_requested.discard(op_uuid)
            if slot is not None:
                self.cgroups.release(slot)
            self.events.end(op_uuid)
            self._discard_scratch(run_dir)

    def _judge_limits(self, verdict: Verdict, request: SpawnRequest, slot: str | None, filled: bool) -> None:
        """A run the OOM killer hit, or that filled its tmpfs upper, is FAILED whatever its command said."""
        if verdict.status == "CANCELLED":
            return
        if slot is not None and self.cgroups.oom_kills_since_last(slot):
            verdict.status, verdict.reason = "FAILED", "signal"
            verdict.error = (f"out of memory: the kernel killed a process of this run (limit "
                             f"{self.config.limits.memory_bytes} bytes a run, "
                             f"{self.admission.memory_budget} bytes for all runs together)")
            if request.disposable:
                verdict.error += "; a disposable run's files count against its memory too"
        elif filled:
            verdict.status, verdict.reason = "FAILED", "signal"
            verdict.error = (f"max_layer_bytes: the run filled its writable layer ({request.max_layer_bytes} "
                             "bytes); writes past it failed (no space left on device) and nothing was kept")

    def _stop_run(self, op_uuid: str, reason: str) -> None:
        run = self._runs.get(op_uuid)
        if run is not None:
            run.kill(reason)

    def _discard_scratch(self, path: str) -> None:
        """Remove a run's scratch dir off the critical path (waiters already have their result; close()
        waits for it). One thread job takes every dir queued meanwhile: a thread hand-off per run cost
        the event loop more than the removal."""
        self._trash.append(path)
        if self._sweep is None:
            self._sweep = asyncio.ensure_future(asyncio.to_thread(self._empty_trash))
            self._background.add(self._sweep)
            self._sweep.add_done_callback(self._swept)

    def _empty_trash(self) -> None:
        while True:
            try:
                path = self._trash.pop(0)  # atomic; the loop thread only appends
            except IndexError:
                return
            shutil.rmtree(path, ignore_errors=True)

    def _swept(self, sweep: asyncio.Future[None]) -> None:
        self._background.discard(sweep)
        self._sweep = None
        if self._trash:  # queued after the thread found the list empty
            self._discard_scratch(self._trash.pop())

    async def _finish(self, op_uuid: str, request: SpawnRequest, image: Image, verdict: Verdict, run_dir: str,
                      elapsed: float) -> None:
        if verdict.exit is not None:
            self.events.emit(op_uuid, "exit", 1, {
                "pid": verdict.pid, "code": verdict.exit.get("code", -1), "signal": verdict.exit.get("signal", -1),
                "core_dump": verdict.exit.get("core_dump", False), "timed_out": verdict.timed_out,
                "duration_ms": int(elapsed * 1000), "resources": verdict.exit.get("resources", {})})
        self.events.emit(op_uuid, "shutdown", 0, {"stopped_at": iso_now(), "reason": verdict.reason})
        status, error = verdict.status, verdict.error
        result_image: str | None = None
        size = 0
        if status == "SUCCESS" and not request.disposable:
            try:
                result_image, size = await self._commit(op_uuid, request, image, run_dir)
            except EngineError as exc:
                status, error = "FAILED", str(exc)
        result = instance_result(verdict, elapsed)
        usage = (verdict.exit or {}).get("resources") or {}
        self.events.update_operation(
            op_uuid, status=OperationStatus(status), error=error, finished_at=time.time(),
            result_image_uuid=result_image, image_size=size if result_image else None,
            consumed_cpu=(usage.get("user_time_us", 0) + usage.get("sys_time_us", 0)) / 1e6,
            consumed_memory=usage.get("max_rss_kb", 0), result=result)
        self.events.emit_completion(op_uuid, status, result_image, error, size, elapsed)

    async def _commit(self, op_uuid: str, request: SpawnRequest, image: Image, run_dir: str) -> tuple[str, int]:
        """Turn the run's upper dir into the child image's top layer (a rename), or reuse the source image
        when nothing changed. The image row is written only once the layer is in place."""
        upper = f"{run_dir}/upper"
        with os.scandir(upper) as entries:
            changed = any(True for _ in entries)
        # Most runs change nothing or little; a thread hop costs more than scanning an empty upper.
        scan = await asyncio.to_thread(layerfs.scan_upper, upper) if changed else layerfs.UpperScan(0, 0)
        if scan.size > request.max_layer_bytes:
            raise EngineError(f"the run wrote {scan.size} bytes, more than max_layer_bytes "
                              f"({request.max_layer_bytes}); nothing was committed")
        env, workdir = self._result_env(request, image), image.workdir
        if request.preserve_cwd:
            workdir = request.cwd or image.workdir or "/"
        if scan.empty and env == image.env and workdir == image.workdir:
            return image.uuid, 0
        chain = image.layers
        if not scan.empty:
            layer = layerfs.new_layer_id()
            os.rename(upper, self.layer_path(layer))
            layerfs.fsync_dir(self._layers_dir)
            chain = await self._maybe_squash((*image.layers, layer))
        child = Image(uuid=str(uuid.uuid4()), created_at=time.time(), layers=chain, parent=image.uuid,
                      operation_uuid=op_uuid, env=env, workdir=workdir, size=image.size + scan.size)
        self.store.add_image(child)
        return child.uuid, scan.size

    def _result_env(self, request: SpawnRequest, image: Image) -> dict[str, str]:
        if not request.preserve_env:
            return image.env
        env = dict(image.env)
        for key, value in (request.raw.get("env") or {}).items():
            if value in (None, ""):
                env.pop(key, None)
            else:
                env[key] = str(value)
        return env

    async def _maybe_squash(self, chain: tuple[str, ...]) -> tuple[str, ...]:
        """Keep chains far below overlay's 500-layer limit: merge everything between the base layer and the
        newest few into one layer of hard links. Content is unchanged; the merge is cached for siblings."""
        if len(chain) <= self.config.squash_at:
            return chain
        # The result is base + merged + top, so at most squash_at - 2 stay on top. With a low squash_at,
        # a fixed KEEP_ON_TOP would leave nothing to merge and put the base in twice (overlay: ELOOP).
        keep = max(0, min(KEEP_ON_TOP, self.config.squash_at - 2))
        split = len(chain) - keep  # not chain[-keep:]: that is the whole chain when keep is 0
        base, middle, top = chain[0], chain[1:split], chain[split:]
        if len(middle) < 2:
            return chain  # merging one layer into one layer gains nothing
        layer = self.store.squashed_layer(middle)
        if layer is None:
            layer = layerfs.new_layer_id()
            scratch = self.state.runs / f"squash-{layer}"
            await asyncio.to_thread(layerfs.squash_layers, [self.layer_path(x) for x in middle], str(scratch))
            os.rename(scratch, self.state.layers / layer)
            layerfs.fsync_dir(self.state.layers)
            self.store.record_squash(middle, layer)
        return (base, layer, *top)

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
        op = self.store.get_operation(op_uuid)
        run = self._runs.get(op_uuid)
        if op.status.is_terminal:
            raise Conflict(f"operation {op_uuid} is not running ({op.status.value})")
        if run is None or not run.sandbox_pid or not run.command_pid or run.finished:
            raise EngineError(f"operation {op_uuid} has no running sandbox yet; retry shortly", status=425)
        request = parse_spawn_request(body, run.image.uuid)
        argv, env = command_line(request, run.image)
        spid = run.next_spid()
        launched = exec_in_sandbox(
            run.sandbox_pid, argv, env, request.cwd or run.image.workdir or "/", request.uid, request.gid,
            rlimits_for(self.config.limits, run.request.max_layer_bytes, cgroups=bool(run.cgroup_procs)),
            run.cgroup_procs)
        child = ExecRun(self.events, op_uuid, spid, launched, request.truncate_output_at, {
            "command": request.command, "args": argv[1:], "shell": request.shell, "cwd": request.cwd or "/",
            "uid": request.uid, "gid": request.gid, "timeout": None,
            "truncate_at": request.truncate_output_at, "env": masked_env(env)})
        run.children[spid] = child
        task = asyncio.ensure_future(child.run(request.stdin.data))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return spid

    def is_starting(self, op_uuid: str) -> bool:
        """The operation is being run by this engine: its events are coming (follow waits for them)."""
        return op_uuid in self._tasks

    def instance_run(self, op_uuid: str) -> InstanceRun | None:
        """The live run of an operation (its sandbox is up or starting), else None."""
        return self._runs.get(op_uuid)

    async def wait(self, op_uuid: str) -> Operation:
        task = self._tasks.get(op_uuid)
        if task is not None:
            await asyncio.shield(task)
        return self.store.get_operation(op_uuid)

    async def cancel(self, op_uuid: str) -> Operation:
        op = self.store.get_operation(op_uuid)
        if op.status.is_terminal:
            raise Conflict(f"operation {op_uuid} already ended ({op.status.value})")
        run = self._runs.get(op_uuid)
        if run is not None:
            run.kill("cancelled")
        elif self.admission.withdraw(op_uuid, "cancelled"):
            pass  # it was waiting for admission: it ends CANCELLED without starting
        elif op_uuid in self._tasks:
            self._cancel_requested.add(op_uuid)
        return await self.wait(op_uuid)

    async def run(self, body: dict[str, Any]) -> Operation:
        """Spawn and wait: the convenience the tests and benchmarks use."""
        op = await self.spawn(body)
        return await self.wait(op.uuid)
