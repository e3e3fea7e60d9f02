"""Image import operations (`POST /v1/images/import`, kind "image_import"): a source (image_sources/) is
resolved, the layers whose diff id is not stored yet are fetched and extracted (oci_layer.py, a confined
helper), and the layer chain becomes an image, tagged.

Layers are content-addressed by diff id (store.layer_digests): an image sharing a base with one imported
before reuses its layer directory, and re-importing the same manifest digest (store.image_sources) returns
the same image at once. Nothing half-done is kept: blobs and partial layers live under
<state>/imports/<op>/ until a layer is complete and verified, a failed or cancelled import removes the
layers it made that no image uses, and the engine sweeps imports/ when it starts.

Events (spid 0): `import_progress` {phase, layer, layers, digest, done, total, bytes_done, bytes_total} at
most PROGRESS_RATE a second plus one at each phase change, `import_log` {message} lines, then `completion`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contree_tui.engine import layers as layerfs
from contree_tui.engine.config import EngineConfig
from contree_tui.engine.disk_space import require_free
from contree_tui.engine.event_log import EventLog
from contree_tui.engine.image_sources import ROOTFS_SCHEME, Credentials, ImageSource, ResolvedImage, open_source
from contree_tui.engine.image_sources.base import LayerBlob
from contree_tui.engine.image_sources.tar_members import TarIndexer
from contree_tui.engine.lower_links import link_lower_files
from contree_tui.engine.models import DEFAULT_PATH, Conflict, EngineError, Image, NotFound, Operation, OperationStatus
from contree_tui.engine.oci_layer import ExtractedLayer, extract_layer, layer_from_tarball
from contree_tui.engine.sandbox.helper import HelperSet
from contree_tui.engine.spawn_request import TAG_RE
from contree_tui.engine.state_dir import StateDir, spread_subdirectories
from contree_tui.engine.store import Store

KIND = "image_import"
DEFAULT_TIMEOUT = 300  # the spec's ImageImportRequest.timeout default
MAX_URL = 4096
MAX_TAG = 256
MAX_PARALLEL_IMPORTS = 4  # executing at once (downloads are I/O); extraction is capped apart, MAX_IMPORTS
LAYER_JOBS = 3  # layers of one import fetched/extracted at once (Docker pulls 3 layers at a time too)
PROGRESS_RATE = 10  # import_progress events a second at most, per operation (plus one per phase change)
MASKED = "<MASKED>"
Squash = Callable[[tuple[str, ...]], Awaitable[tuple[str, ...]]]


@dataclass(frozen=True)
class ImportRequest:
    url: str
    credentials: Credentials | None
    insecure: bool
    tag: str | None
    timeout: float

    def stored(self) -> dict[str, Any]:
        """The request as the operation records it (and GET echoes it): the password never stored."""
        registry: dict[str, Any] = {"url": self.url}
        if self.credentials is not None:
            registry["credentials"] = {"username": self.credentials.username, "password": MASKED}
        if self.insecure:
            registry["insecure"] = True
        timeout = int(self.timeout) if float(self.timeout).is_integer() else self.timeout
        return {"registry": registry, "tag": self.tag, "timeout": timeout}


def parse_import_request(body: Any, max_timeout: float) -> ImportRequest:
    """An ImageImportRequest, checked: EngineError (400) naming the field that is wrong."""
    if not isinstance(body, dict):
        raise EngineError("request body must be a JSON object")
    registry = body.get("registry")
    if not isinstance(registry, dict):
        raise EngineError("registry: required, an object with a url like docker://docker.io/library/alpine:latest")
    url = registry.get("url")
    if not isinstance(url, str) or not url.strip():
        raise EngineError("registry.url: required, e.g. docker://docker.io/library/alpine:latest or oci:DIR:REF")
    if len(url) > MAX_URL or any(ord(c) < 32 for c in url):
        raise EngineError(f"registry.url: at most {MAX_URL} characters, no control characters")
    credentials = None
    raw_creds = registry.get("credentials")
    if raw_creds is not None:
        if not isinstance(raw_creds, dict):
            raise EngineError("registry.credentials: an object {username, password}")
        username, password = raw_creds.get("username"), raw_creds.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise EngineError("registry.credentials: username and password are required strings")
        if username or password:
            credentials = Credentials(username, password)
    insecure = registry.get("insecure", False)
    if not isinstance(insecure, bool):
        raise EngineError("registry.insecure: a boolean")
    tag = body.get("tag")
    if tag is not None and (not isinstance(tag, str) or len(tag) > MAX_TAG or not TAG_RE.match(tag)):
        raise EngineError(f"tag: {str(tag)[:MAX_TAG]!r} is not a valid tag (letters, digits, _ and - with : / . "
                          f"separators, at most {MAX_TAG} characters)")
    timeout = body.get("timeout", DEFAULT_TIMEOUT)
    if timeout is None:
        timeout = DEFAULT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= max_timeout:
        raise EngineError(f"timeout: seconds, more than 0 and at most {max_timeout:g}")
    return ImportRequest(url.strip(), credentials, insecure, tag or None, float(timeout))


def image_env(config: dict[str, Any]) -> dict[str, str]:
    """The config's Env ("K=V" strings) as a dict; PATH defaulted (the spec's default) when absent."""
    env: dict[str, str] = {}
    raw = (config.get("config") or {}).get("Env") if isinstance(config.get("config"), dict) else None
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, str) and "=" in item and "\0" not in item:
            key, _, value = item.partition("=")
            if key:
                env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def _config_field(config: dict[str, Any], name: str) -> str:
    inner = config.get("config")
    value = inner.get(name) if isinstance(inner, dict) else None
    return value[:4096] if isinstance(value, str) else ""


async def _hash_file(path: Path) -> tuple[str, int]:
    """sha256 of a host file and its size, in a thread that stops at the next 1 MiB when cancelled (hashing
    runs at ~1.5 GB/s here: a 2 GiB tarball is ~1.5 s)."""
    stop = threading.Event()

    def digest() -> tuple[str, int]:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise EngineError(f"{path}: cannot open ({exc.strerror})") from None
        with os.fdopen(fd, "rb", buffering=0) as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO would block the read
                raise EngineError(f"{path}: not a regular file")
            sha, size = hashlib.sha256(), 0
            while chunk := fh.read(1 << 20):
                if stop.is_set():
                    raise asyncio.CancelledError
                sha.update(chunk)
                size += len(chunk)
            return "sha256:" + sha.hexdigest(), size

    task = asyncio.ensure_future(asyncio.to_thread(digest))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        raise


def short(digest: str | None) -> str:
    return f"{digest[:19]}…" if digest else "-"


class _Progress:
    """import_progress events of one operation: at most PROGRESS_RATE a second, plus every change of a
    layer's phase (its first and last event in each phase always go out)."""

    def __init__(self, events: EventLog, op_uuid: str) -> None:
        self.events, self.op_uuid = events, op_uuid
        self.layers = 0
        self.bytes_done = self.bytes_total = 0
        self._last = 0.0
        # each layer's (phase, done) last reported (None: the image's own)
        self._phases: dict[int | None, tuple[str, int]] = {}

    def __call__(self, phase: str, layer: int | None = None, digest: str | None = None, done: int = 0,
                 total: int = -1) -> None:
        now = time.monotonic()
        if self._phases.get(layer) == (phase, done):
            return  # said already
        changed = self._phases.get(layer, ("", 0))[0] != phase or done == total
        if not changed and now - self._last < 1 / PROGRESS_RATE:
            return
        self._phases[layer] = (phase, done)
        self._last = now
        self.events.emit(self.op_uuid, "import_progress", 0, {
            "phase": phase, "layer": layer, "layers": self.layers, "digest": digest, "done": done, "total": total,
            "bytes_done": self.bytes_done, "bytes_total": self.bytes_total})

    def log(self, message: str) -> None:
        self.events.emit(self.op_uuid, "import_log", 0, {"message": message})


class ImageImports:
    """The engine's import operations (started, awaited, cancelled), and the layers they have in hand."""

    def __init__(self, state: StateDir, config: EngineConfig, store: Store, events: EventLog,
                 extractors: HelperSet, squash: Squash, archive_reader: TarIndexer | None = None) -> None:
        self.config, self.store, self.events, self.extractors = config, store, events, extractors
        self._archive_reader = archive_reader  # reads docker-archive / oci-archive tar structure, confined
        self._squash = squash
        self._layers_dir = str(state.layers)
        self.work_root = state.root / "imports"
        self.work_root.mkdir(exist_ok=True)
        # Each import's files in a block group of its own (chattr +T, as runs/): extracting python3.11's
        # 1,500 files took 2.2 s under a plain parent and 0.8 s under this one on this VM's ext4, whose
        # inode allocation crawls past recently deleted inodes (state_dir.py).
        spread_subdirectories(self.work_root)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stop_reason: dict[str, str] = {}  # why a task was cancelled: "cancelled" or the engine's reason
        self._slots = asyncio.Semaphore(MAX_PARALLEL_IMPORTS)
        # By diff id: one import extracts a layer, others sharing it wait, then reuse it (with a count of
        # the imports using the lock, so it goes with the last of them).
        self._layer_locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._pins: dict[str, int] = {}  # layers held by imports in flight (how many holds)

    # -- start, wait, cancel ------------------------------------------------------------------------
    def start(self, body: Any) -> Operation:
        request = parse_import_request(body, self.config.max_timeout)
        source: ImageSource | None = None
        if not request.url.startswith(ROOTFS_SCHEME):
            try:
                source = open_source(request.url, request.credentials, insecure=request.insecure,
                                     timeout=request.timeout, indexer=self._archive_reader)
            except ImportError:  # a source module this build does not have
                raise EngineError(f"registry.url: {request.url[:200]!r}: this engine cannot import from such "
                                  "a source yet", status=501) from None
        elif not request.url[len(ROOTFS_SCHEME):].startswith("/"):  # the engine's cwd is not the client's
            raise EngineError("registry.url: rootfs: needs an absolute path, e.g. rootfs:/srv/rootfs.tar")
        op = Operation(uuid=str(uuid.uuid4()), kind=KIND, status=OperationStatus.PENDING, created_at=time.time(),
                       image_uuid=None, request=request.stored())
        self.store.add_operation(op)
        self.events.begin(op.uuid)
        self._tasks[op.uuid] = asyncio.create_task(self._run(op.uuid, request, source))
        return op

    def is_running(self, op_uuid: str) -> bool:
        return op_uuid in self._tasks

    async def wait(self, op_uuid: str) -> Operation:
        task = self._tasks.get(op_uuid)
        if task is not None:
            await asyncio.shield(task)
        return self.store.get_operation(op_uuid)

    async def cancel(self, op_uuid: str, reason: str = "cancelled") -> Operation:
        op = self.store.get_operation(op_uuid)
        if op.status.is_terminal:
            raise Conflict(f"operation {op_uuid} already ended ({op.status.value})")
        task = self._tasks.get(op_uuid)
        if task is not None:
            self._stop_reason.setdefault(op_uuid, reason)
            task.cancel()
        return await self.wait(op_uuid)

    async def stop_all(self, reason: str) -> None:
        for op_uuid in list(self._tasks):
            self._stop_reason.setdefault(op_uuid, reason)
            self._tasks[op_uuid].cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def sweep(self) -> None:
        """At engine start (no import in flight): what interrupted imports left in imports/."""
        for entry in self.work_root.iterdir():
            shutil.rmtree(entry, ignore_errors=True)

    # -- the operation ------------------------------------------------------------------------------
    async def _run(self, op_uuid: str, request: ImportRequest, source: ImageSource | None) -> None:
        created = time.time()
        progress = _Progress(self.events, op_uuid)
        work = self.work_root / op_uuid
        held: list[str] = []  # the layers this import uses (pinned; removed if it fails and nothing else uses them)
        status, error, image = "FAILED", None, None
        try:
            try:
                async with asyncio.timeout(request.timeout):
                    async with self._slots:  # PENDING while MAX_PARALLEL_IMPORTS others run
                        self.events.update_operation(op_uuid, status=OperationStatus.EXECUTING, started_at=time.time())
                        # A nearly full disk fails the operation, it does not refuse the POST with 507: the
                        # official clients retry every 5xx (contree-cli without end), an operation's error ends them.
                        require_free(self._layers_dir, self.config.min_free_bytes, "import")
                        work.mkdir(exist_ok=True)
                        if source is None:
                            image = await self._import_rootfs(op_uuid, request, work, progress, held, created)
                        else:
                            image = await self._import(op_uuid, request, source, work, progress, held, created)
                status = "SUCCESS"
            except TimeoutError:
                error = (f"the import did not finish within its timeout of {request.timeout:g} s and was stopped "
                         "(raise `timeout` in the request for a large image or a slow registry)")
            except asyncio.CancelledError:
                reason = self._stop_reason.get(op_uuid)
                if reason is None:
                    raise  # not ours: the loop is going away
                status, error = ("CANCELLED", "cancelled") if reason == "cancelled" else ("FAILED", reason)
            except EngineError as exc:
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 - the operation must end, whatever broke
                error = f"engine error: {type(exc).__name__}: {exc}"
        finally:
            try:  # shielded: a cancel arriving now (the import had ended) must not leave files or a live status
                await asyncio.shield(self._clean_up(status == "SUCCESS", held, source, work))
            finally:
                self._finish(op_uuid, status, error, image, request.tag, time.time() - created)

    async def _clean_up(self, succeeded: bool, held: list[str], source: ImageSource | None, work: Path) -> None:
        if not succeeded:
            await self._forget(held)
        for layer in held:
            self._unpin(layer)
        if source is not None:
            try:
                await source.aclose()
            except Exception:  # noqa: BLE001 - closing a source must not change the outcome
                pass
        await asyncio.to_thread(shutil.rmtree, work, True)

    def _finish(self, op_uuid: str, status: str, error: str | None, image: Image | None, tag: str | None,
                elapsed: float) -> None:
        if status != "SUCCESS":
            self.events.emit(op_uuid, "import_log", 0, {"message": f"import {status.lower()}: {error}"})
        self.events.update_operation(
            op_uuid, status=OperationStatus(status), error=error, finished_at=time.time(),
            result_image_uuid=image.uuid if image else None, result_tag=tag if image else None,
            image_size=image.size if image else None)
        self.events.emit_completion(op_uuid, status, image.uuid if image else None, error,
                                    image.size if image else 0, elapsed)
        self._tasks.pop(op_uuid, None)
        self._stop_reason.pop(op_uuid, None)
        self.events.end(op_uuid)

    def _remaining(self, created: float, request: ImportRequest) -> float:
        return max(1.0, request.timeout - (time.time() - created))

    async def _import(self, op_uuid: str, request: ImportRequest, source: ImageSource, work: Path,
                      progress: _Progress, held: list[str], created: float) -> Image:
        progress("resolve")
        resolved = await source.resolve()
        progress.layers = len(resolved.layers)
        where = f" ({resolved.platform})" if resolved.platform else ""
        progress.log(f"resolved {resolved.reference}{where}: {short(resolved.source_digest)}, "
                     f"{len(resolved.layers)} layers")
        known = self.store.image_for_source(resolved.source_digest)
        if known is not None:  # the same content again: the same image, at once
            if request.tag:
                known = self.store.set_tag(known.uuid, request.tag)
                progress.log(f"tagged {request.tag}")
            progress.log(f"already imported as {known.uuid}")
            return known
        plan = [self.store.layer_by_diff_id(b.diff_id) if b.diff_id else None for b in resolved.layers]
        plan = [p if p is not None and os.path.isdir(f"{self._layers_dir}/{p[0]}") else None for p in plan]
        fetch = [b for b, p in zip(resolved.layers, plan, strict=True) if p is None]
        progress.bytes_total = sum(max(0, b.size) for b in fetch)
        if fetch:
            require_free(self._layers_dir, self.config.min_free_bytes + progress.bytes_total, "import")
        # Layers are independent diffs: LAYER_JOBS of them are fetched and extracted at once (a download
        # overlaps another layer's extraction; extraction slots are the engine's, MAX_IMPORTS).
        jobs = asyncio.Semaphore(LAYER_JOBS)
        found: list[tuple[str, int] | None] = [None] * len(resolved.layers)
        pending: dict[int, tuple[Path, str, ExtractedLayer]] = {}  # layers with hard links to lower files

        async def one(index: int, blob: LayerBlob) -> None:
            async with jobs:
                found[index] = await self._layer(request, source, resolved, index, blob, work, progress, created,
                                                 held, pending)

        tasks = [asyncio.ensure_future(one(i, b)) for i, b in enumerate(resolved.layers)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # every helper dead, every layer in `held`
            raise
        for index in sorted(pending):  # bottom up: the layers below each are complete when it is linked
            out, layer, extracted = pending[index]
            lowers = [f"{self._layers_dir}/{item[0]}" for item in reversed(found[:index]) if item is not None]
            copied = await link_lower_files(
                self.extractors, out, lowers, extracted.lower_links, work / f"lower-{index}",
                max_bytes=self.config.max_layer_bytes - extracted.size, timeout=self._remaining(created, request))
            progress.log(f"layer {index + 1}/{len(found)}: {len(extracted.lower_links)} hard links to files of "
                         f"lower layers made ({copied / (1 << 20):.1f} MiB copied)")
            found[index] = await self._commit_layer(out, layer, extracted, extracted.size + copied, held)
        ordered = [item for item in found if item is not None]
        size = sum(item[1] for item in ordered)
        progress("commit", digest=resolved.source_digest)
        layers = tuple(item[0] for item in ordered)
        # A layer whose root is opaque (`.wh..wh..opq` at its top) replaces everything below it; overlay does
        # not read that mark on a layer's root, so the layers below leave the chain instead.
        cut = next((i for i in range(len(layers) - 1, 0, -1)
                    if layerfs.is_opaque(f"{self._layers_dir}/{layers[i]}")), 0)
        if cut:
            layers = layers[cut:]
            progress.log(f"layer {cut + 1} replaces the whole tree: the {cut} below it are not used")
        if len(layers) > self.config.squash_at:  # overlay takes at most 500 lowers: as runs' chains do
            squash = asyncio.ensure_future(self._squash(layers))
            try:
                layers = await asyncio.shield(squash)
            except asyncio.CancelledError:  # its thread cannot be stopped: let it finish (its result is kept)
                await asyncio.gather(squash, return_exceptions=True)
                raise
            progress.log(f"{len(ordered)} layers squashed into {len(layers)} (the engine's depth limit "
                         f"{self.config.squash_at})")
            for layer in layers:
                if layer not in held:
                    self._pin(layer)
                    held.append(layer)
        image = Image(uuid=str(uuid.uuid4()), created_at=time.time(), layers=layers, operation_uuid=op_uuid,
                      tags=(request.tag,) if request.tag else (), env=image_env(resolved.config),
                      size=size, user=_config_field(resolved.config, "User"),
                      config_workdir=_config_field(resolved.config, "WorkingDir"))
        self.store.add_image(image, resolved.source_digest)
        if request.tag:
            progress.log(f"tagged {request.tag}")
        progress.log(f"imported {resolved.reference} as {image.uuid}")
        return image

    async def _layer(self, request: ImportRequest, source: ImageSource, resolved: ResolvedImage, index: int,
                     blob: LayerBlob, work: Path, progress: _Progress, created: float,
                     held: list[str], pending: dict[int, tuple[Path, str, ExtractedLayer]]) -> tuple[str, int] | None:
        """The layer for `blob`: the stored one with its diff id, or fetched and extracted now; either way
        pinned and added to `held` (the import's layers, removed if it fails)."""
        count = len(resolved.layers)
        key = blob.diff_id or blob.digest
        lock, users = self._layer_locks.get(key) or (asyncio.Lock(), 0)
        self._layer_locks[key] = (lock, users + 1)
        try:
            async with lock:  # an import sharing this layer waits for it, then reuses it
                stored = self.store.layer_by_diff_id(blob.diff_id) if blob.diff_id else None
                if stored is not None and os.path.isdir(f"{self._layers_dir}/{stored[0]}"):
                    self._pin(stored[0])
                    held.append(stored[0])
                    progress("reuse", index, blob.digest, 0, 0)
                    progress.log(f"layer {index + 1}/{count} {short(blob.diff_id)} reused")
                    return stored
                return await self._fetch_and_extract(request, source, index, blob, work, progress, created, count,
                                                     held, pending)
        finally:
            lock, users = self._layer_locks[key]
            if users > 1:
                self._layer_locks[key] = (lock, users - 1)
            else:
                del self._layer_locks[key]

    async def _fetch_and_extract(self, request: ImportRequest, source: ImageSource, index: int, blob: LayerBlob,
                                 work: Path, progress: _Progress, created: float, count: int, held: list[str],
                                 pending: dict[int, tuple[Path, str, ExtractedLayer]]) -> tuple[str, int] | None:
        """The layer extracted and stored, or None with it in `pending` (under `work`, not stored yet) when it
        holds hard links to files of the layers below (made once those are extracted)."""
        path = work / f"blob-{index}"
        counted = 0  # of this blob's bytes, in progress.bytes_done (layers download side by side)

        def downloaded(done: int) -> None:
            nonlocal counted
            progress.bytes_done += done - counted
            counted = done
            progress("download", index, blob.digest, done, blob.size)

        progress("download", index, blob.digest, 0, blob.size)
        try:
            await source.fetch_blob(blob, path, downloaded)
            fetched = path.stat().st_size
            progress.bytes_done += fetched - counted
            counted = fetched
            progress("download", index, blob.digest, fetched, fetched)
            layer = layerfs.new_layer_id()
            out = work / f"layer-{layer}"
            progress("extract", index, blob.digest, 0, fetched)
            extracted = await extract_layer(
                self.extractors, path, out, max_bytes=self.config.max_layer_bytes,
                timeout=self._remaining(created, request),
                progress=lambda done: progress("extract", index, blob.digest, min(done, fetched), fetched),
                lower_links=index > 0)
            progress("extract", index, blob.digest, fetched, fetched)
        finally:
            path.unlink(missing_ok=True)
        if blob.diff_id and extracted.diff_id != blob.diff_id:
            await asyncio.to_thread(shutil.rmtree, out, True)
            raise EngineError(f"layer {index + 1}/{count} ({blob.digest}): its content is {extracted.diff_id}, "
                              f"but the image config says {blob.diff_id}; the image is corrupt or was tampered "
                              "with, nothing was imported", status=422)
        if extracted.lower_links:
            pending[index] = (out, layer, extracted)
            stored = None
        else:
            stored = await self._commit_layer(out, layer, extracted, extracted.size, held)
        opaque = f", {len(extracted.opaque)} opaque dirs" if extracted.opaque else ""
        xattrs = f", {extracted.xattrs} xattrs" if extracted.xattrs else ""
        progress.log(f"layer {index + 1}/{count} {short(extracted.diff_id)} extracted ({extracted.entries} entries, "
                     f"{extracted.size / (1 << 20):.1f} MiB{opaque}{xattrs})")
        if extracted.xattrs_skipped:
            progress.log(f"layer {index + 1}/{count}: xattrs not restored (not user.* or security.capability, or an "
                         f"overlay's own): {', '.join(extracted.xattrs_skipped)}")
        return stored

    async def _commit_layer(self, out: Path, layer: str, extracted: ExtractedLayer, size: int,
                            held: list[str]) -> tuple[str, int]:
        """An extracted layer into layers/, recorded by its diff id (or the one recorded meanwhile), pinned."""
        os.rename(out, f"{self._layers_dir}/{layer}")
        layerfs.fsync_dir(self._layers_dir)
        stored = self.store.record_layer_digest(extracted.diff_id, layer, size)
        self._pin(stored[0])
        held.append(stored[0])
        if stored[0] != layer:  # recorded by someone else meanwhile (an import without the diff id up front)
            await asyncio.to_thread(shutil.rmtree, f"{self._layers_dir}/{layer}", True)
        return stored

    async def _import_rootfs(self, op_uuid: str, request: ImportRequest, work: Path, progress: _Progress,
                             held: list[str], created: float) -> Image:
        """`rootfs:PATH`: a plain directory or a tarball (plain, gzip, zstd, bzip2, xz) as one root layer.

        A tarball is content-addressed as an OCI image is: its sha256 is its source digest (the same file
        again is the same image, at once) and its uncompressed sha256 its layer's diff id (the same tar
        compressed otherwise, or an OCI layer with that diff id, shares the layer). A directory has no
        digest short of reading every file: each import of one makes a new image."""
        source = Path(request.url[len(ROOTFS_SCHEME):])
        progress.layers = 1
        if source.is_dir():
            return await self._import_rootfs_directory(op_uuid, request, source, work, progress, held)
        if not source.is_file():
            raise NotFound(f"{source}: no such rootfs directory or tarball")
        progress("resolve")
        digest, total = await _hash_file(source)
        progress.log(f"{source}: {short(digest)}, {total / (1 << 20):.1f} MiB")
        known = self.store.image_for_source(digest)
        if known is not None:
            progress("reuse", 0, digest, 0, 0)
            if request.tag:
                known = self.store.set_tag(known.uuid, request.tag)
                progress.log(f"tagged {request.tag}")
            progress.log(f"already imported as {known.uuid}")
            return known
        require_free(self._layers_dir, self.config.min_free_bytes + total, "import")
        layer = layerfs.new_layer_id()
        out = work / f"layer-{layer}"
        progress("extract", 0, digest, 0, total)
        extracted = await layer_from_tarball(
            self.extractors, source, out, max_bytes=self.config.max_layer_bytes,
            timeout=self._remaining(created, request),
            progress=lambda done: progress("extract", 0, digest, min(done, total), total))
        progress("extract", 0, digest, total, total)
        if extracted.source_digest and extracted.source_digest != digest:  # the file changed meanwhile
            progress.log(f"{source} changed while it was imported: recorded as what was extracted, "
                         f"{short(extracted.source_digest)}")
            digest = extracted.source_digest
        os.rename(out, f"{self._layers_dir}/{layer}")
        layerfs.fsync_dir(self._layers_dir)
        stored = self.store.record_layer_digest(extracted.diff_id, layer, extracted.size)
        self._pin(stored[0])
        held.append(stored[0])
        if stored[0] != layer:  # the same tar was imported before (otherwise compressed, or as an OCI layer)
            await asyncio.to_thread(shutil.rmtree, f"{self._layers_dir}/{layer}", True)
            progress.log(f"layer {short(extracted.diff_id)} already stored: reused")
        xattrs = f", {extracted.xattrs} xattrs" if extracted.xattrs else ""
        progress.log(f"extracted {extracted.entries} entries, {extracted.size / (1 << 20):.1f} MiB{xattrs}")
        if extracted.xattrs_skipped:
            progress.log(f"xattrs not restored: {', '.join(extracted.xattrs_skipped)}")
        progress("commit", digest=digest)
        image = Image(uuid=str(uuid.uuid4()), created_at=time.time(), layers=(stored[0],), operation_uuid=op_uuid,
                      tags=(request.tag,) if request.tag else (), env={"PATH": DEFAULT_PATH}, size=stored[1])
        self.store.add_image(image, digest)
        if request.tag:
            progress.log(f"tagged {request.tag}")
        progress.log(f"imported {source} as {image.uuid}")
        return image

    async def _import_rootfs_directory(self, op_uuid: str, request: ImportRequest, source: Path, work: Path,
                                       progress: _Progress, held: list[str]) -> Image:
        layer = layerfs.new_layer_id()
        out = work / f"layer-{layer}"
        progress("extract", 0, None, 0, -1)
        copy = asyncio.ensure_future(asyncio.to_thread(layerfs.layer_from_directory, str(source), str(out)))
        try:
            await asyncio.shield(copy)
        except asyncio.CancelledError:
            await asyncio.gather(copy, return_exceptions=True)  # a thread cannot be stopped: let it end
            raise
        size = await asyncio.to_thread(lambda: layerfs.scan_upper(str(out)).size)
        os.rename(out, f"{self._layers_dir}/{layer}")
        layerfs.fsync_dir(self._layers_dir)
        self._pin(layer)
        held.append(layer)
        progress("commit")
        image = Image(uuid=str(uuid.uuid4()), created_at=time.time(), layers=(layer,), operation_uuid=op_uuid,
                      tags=(request.tag,) if request.tag else (), env={"PATH": DEFAULT_PATH}, size=size)
        self.store.add_image(image)  # no source digest: a directory is copied anew each time
        if request.tag:
            progress.log(f"tagged {request.tag}")
        progress.log(f"imported {source} as {image.uuid} (a directory: each import makes a new image)")
        return image

    # -- layers in hand -----------------------------------------------------------------------------
    def pinned_layers(self) -> set[str]:
        """Layers imports in progress hold (reused or extracted, not listed by an image row yet): an image
        delete leaves them (engine/image_disk.py)."""
        return set(self._pins)

    def _pin(self, layer: str) -> None:
        self._pins[layer] = self._pins.get(layer, 0) + 1

    def _unpin(self, layer: str) -> None:
        left = self._pins.get(layer, 0) - 1
        if left > 0:
            self._pins[layer] = left
        else:
            self._pins.pop(layer, None)

    async def _forget(self, held: list[str]) -> None:
        """After a failed import: its layers that no image uses and no other import holds go."""
        referenced = self.store.referenced_layers()
        doomed = [x for x in dict.fromkeys(held) if x not in referenced and self._pins.get(x, 0) <= held.count(x)]
        if not doomed:
            return
        self.store.forget_layer_digests(doomed)
        for layer in doomed:
            await asyncio.to_thread(shutil.rmtree, f"{self._layers_dir}/{layer}", True)
