"""Getting a sync's contents onto the server: as few round trips as the server allows, several in flight,
with progress. The Syncer (sync.py) decides *what* must be sent; this module sends it.

The official API takes one file per request (POST /v1/files) and answers one lookup per request
(GET/HEAD /v1/files/{sha256}); it has no batch endpoint. A first sync of 10,000 small files used to probe and
then upload each one (20,000 requests, 8 in flight): 46-70 s on the embedded engine, and against a hosted
Contree 50 ms away 20,000 x 50 ms / 8 = 2 min (17 min one at a time). What is done instead, by file size:

- small (<= PROBE_ABOVE): uploaded without asking first. Sending a few KiB costs one round trip, the same as
  the probe it replaces, and the server keeps equal contents once (the same uuid comes back), so content it
  already holds costs no more than the probe would have: one request per file instead of two.
- larger: asked about first (GET gives the uuid; HEAD when the cache knows the uuid but has not had it
  confirmed lately) and uploaded on a 404, streamed from the file.
- `in_flight` requests at a time (IN_FLIGHT, a semaphore): 10,000 round trips of 50 ms take 16 s at 32.
- contree-tui's engine takes up to BATCH_FILES small files in one request (POST /v1/x/files/batch, our
  extension, engine/http/routes_files.py). A request costs ~1.2 ms of client CPU and ~1 ms of engine CPU in
  Python, so 10,000 single uploads are >= 20 s of CPU however many are in flight; 40 batches take well under
  a second. Used when the target is the embedded engine (policy.batch None) and dropped for the connection
  if the engine answers 404/405 (an engine of an older contree-tui, still running).

Progress: `Transfer` counts files and bytes done against the totals; `on_progress` is called as they move
(the counts only grow; the totals grow when a file that changed mid-upload is sent again).
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import time
import weakref
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from contree_client.exceptions import APIStatusError, NotFoundError
from contree_client.models import FileResponse
from contree_client.runtime import RequestSpec

from contree_tui.client.connection import Connection
from contree_tui.client.dir_scan import LocalFile, open_regular
from contree_tui.client.sync_cache import Blob

IN_FLIGHT = 32  # requests at a time: 50 ms round trips → 10,000 files in ~16 s (contree-cli uses 8 threads)
PROBE_ABOVE = 64 * 1024  # ask before uploading only files larger than this: a probe costs what their upload costs
SMALL_FILE = 256 * 1024  # read into memory (and batched) below this; streamed above (64 KiB per chunk)
BATCH_PATH = "/x/files/batch"
BATCH_FILES = 256  # files per batch request; the engine accepts up to 4,096 (file_store.BATCH_MAX_FILES)
BATCH_BYTES = 1 << 20  # and this many bytes: the engine holds a batch's files in memory until written
BATCH_IN_FLIGHT = 4  # batch requests at a time: enough to overlap reading here with writing there on 2 cores
FRAME_HEADER = struct.Struct(">Q")  # each file of a batch body: its length, then its bytes

_NO_BATCH: weakref.WeakSet[Connection] = weakref.WeakSet()  # connections whose server refused a batch


@dataclass(frozen=True)
class TransferPolicy:
    in_flight: int = IN_FLIGHT
    probe_above: int = PROBE_ABOVE  # -1: probe every file before its upload (the way it was before)
    batch: bool | None = None  # None: batch when the target is the embedded engine


SERIAL = TransferPolicy(in_flight=1, probe_above=-1, batch=False)
"""One probe and one upload at a time: the baseline the benchmark compares against."""


@dataclass
class Transfer:
    """What one sync sent and asked, and its progress (blobs, not paths: equal contents count once)."""

    probed: int = 0  # GET/HEAD /files requests
    uploaded: int = 0
    uploaded_bytes: int = 0
    files_total: int = 0
    bytes_total: int = 0
    files_done: int = 0
    bytes_done: int = 0
    mismatched: set[str] = field(default_factory=set)  # paths whose bytes changed between hash and upload


class UploadFailed(Exception):
    """The server refused a probe or an upload; `str()` names the file and the server's answer."""


class BlobUploader:
    """Sends what `ensure` is given; `remember(sha256, blob)` records each content the server confirmed."""

    def __init__(self, connection: Connection, blobs: dict[str, Blob], remember: Callable[[str, Blob], None], *,
                 policy: TransferPolicy, on_progress: Callable[[Transfer], None] = lambda _t: None) -> None:
        self.connection = connection
        self.blobs = blobs
        self.remember = remember
        self.policy = policy
        self.on_progress = on_progress
        self._limit = asyncio.Semaphore(max(1, policy.in_flight))
        self._batch_limit = asyncio.Semaphore(max(1, min(policy.in_flight, BATCH_IN_FLIGHT)))
        self._failure: BaseException | None = None  # the first failure: nothing new starts after it

    @property
    def batching(self) -> bool:
        wanted = self.connection.target.embedded if self.policy.batch is None else self.policy.batch
        return wanted and self.connection not in _NO_BATCH

    async def ensure(self, files: Iterable[LocalFile], transfer: Transfer) -> None:
        """Make sure the server holds each file's content (one file per content: the caller dedups).

        After the first failure nothing new starts, the requests in flight are let finish (what they sent is
        remembered, so the next sync does not send it again), and then that failure is raised (UploadFailed,
        or the connection's own error)."""
        files = list(files)
        transfer.files_total += len(files)
        transfer.bytes_total += sum(f.size for f in files)
        self.on_progress(transfer)
        jobs: list[Coroutine[Any, Any, None]] = []
        singles = files
        if self.batching:
            singles = [f for f in files if f.size > SMALL_FILE]
            jobs += [self._batch(batch, transfer) for batch in _batches(f for f in files if f.size <= SMALL_FILE)]
        jobs += [self._single(f, transfer) for f in singles]
        await asyncio.gather(*(self._guarded(job) for job in jobs), return_exceptions=True)
        if self._failure is not None:
            raise self._failure

    async def _guarded(self, job: Coroutine[Any, Any, None]) -> None:
        try:
            await job
        except Exception as exc:  # noqa: BLE001 - whatever it is, ensure raises it once the others are done
            if self._failure is None:
                self._failure = exc

    # -- one file per request (the official API) --------------------------------------------------------

    async def _single(self, f: LocalFile, transfer: Transfer) -> None:
        async with self._limit:
            if self._failure is not None:
                return
            try:
                if f.size > self.policy.probe_above and await self._probe(f, transfer):
                    pass
                else:
                    await self._upload(f, transfer)
            except APIStatusError as exc:
                raise UploadFailed(f"{f.rel} ({f.size} bytes): the server answered HTTP {exc.status}: "
                                   f"{exc.error}") from exc
        self._done(transfer, 1, f.size)

    async def _probe(self, f: LocalFile, transfer: Transfer) -> bool:
        """Does the server hold f's content? (recorded if so)"""
        client = self.connection.client
        known = self.blobs.get(f.sha256)
        transfer.probed += 1
        if known is not None:  # known but not confirmed lately: HEAD is enough, the uuid is ours already
            if await self.connection.call(lambda: client.check_file_exists(f.sha256)):
                self.remember(f.sha256, Blob(known.uuid, known.size, time.time()))
                return True
            return False
        try:
            record = await self.connection.call(lambda: client.get_file(f.sha256))
        except NotFoundError:
            return False
        self.remember(f.sha256, Blob(record.uuid, record.size, time.time()))
        return True

    async def _upload(self, f: LocalFile, transfer: Transfer) -> None:
        client = self.connection.client

        async def upload() -> FileResponse:
            if f.size <= PROBE_ABOVE:  # read here: a thread hop costs more than reading a few KiB just hashed
                return await client.upload_file(_read_small(f.source))
            if f.size <= SMALL_FILE:
                data = await asyncio.to_thread(_read_small, f.source)
                return await client.upload_file(data)
            handle = os.fdopen(open_regular(f.source), "rb")
            try:
                return await client.upload_file(handle)
            finally:
                handle.close()

        try:
            response = await self.connection.call(upload)
        except OSError:  # gone, or no longer a regular file: the next round scans it again
            transfer.mismatched.add(f.rel)
            return
        self._record(f, response.uuid, response.sha256, response.size, transfer)

    # -- many files per request (the embedded engine) ---------------------------------------------------

    async def _batch(self, files: list[LocalFile], transfer: Transfer) -> None:
        async with self._batch_limit:
            if self._failure is not None:
                return
            if self.connection in _NO_BATCH:  # refused meanwhile: one by one, like every other server
                await run_all(self._single(f, transfer) for f in files)
                return
            body, sent, changed = await asyncio.to_thread(_frames, files)
            transfer.mismatched.update(f.rel for f in changed)
            client = self.connection.client
            spec = RequestSpec(method="POST", path=BATCH_PATH, body=body, content_type="application/octet-stream",
                               idempotent=True)  # content-addressed: sending it twice stores it once
            try:
                response = await self.connection.call(lambda: client.call(spec))
            except APIStatusError as exc:
                if exc.status in (404, 405):
                    _NO_BATCH.add(self.connection)
                    await run_all(self._single(f, transfer) for f in files)
                    return
                first = sent[0].rel if sent else "?"
                raise UploadFailed(f"a batch of {len(sent)} files ({first}, …): the server answered "
                                   f"HTTP {exc.status}: {exc.error}") from exc
            records = _batch_records(response.body, len(sent))
            for f, record in zip(sent, records, strict=True):
                self._record(f, record["uuid"], record["sha256"], record["size"], transfer)
        self._done(transfer, len(files), sum(f.size for f in files))

    # -- bookkeeping -----------------------------------------------------------------------------------

    def _record(self, f: LocalFile, uuid: str, sha256: str, size: int, transfer: Transfer) -> None:
        self.remember(sha256, Blob(uuid, size, time.time()))
        transfer.uploaded += 1
        transfer.uploaded_bytes += size if size >= 0 else f.size
        if sha256 != f.sha256:  # changed between our hash and the upload: the next round scans it again
            transfer.mismatched.add(f.rel)

    def _done(self, transfer: Transfer, files: int, size: int) -> None:
        transfer.files_done += files
        transfer.bytes_done += size
        self.on_progress(transfer)


def _batches(files: Iterable[LocalFile]) -> list[list[LocalFile]]:
    batches: list[list[LocalFile]] = [[]]
    size = 0
    for f in files:
        if batches[-1] and (len(batches[-1]) >= BATCH_FILES or size + f.size > BATCH_BYTES):
            batches.append([])
            size = 0
        batches[-1].append(f)
        size += f.size
    return [batch for batch in batches if batch]


def _frames(files: list[LocalFile]) -> tuple[bytes, list[LocalFile], list[LocalFile]]:
    """(body, the files in it, the files left out because they changed since their hash or went)."""
    parts: list[bytes] = []
    sent: list[LocalFile] = []
    changed: list[LocalFile] = []
    for f in files:
        try:
            with os.fdopen(open_regular(f.source), "rb") as handle:
                data = handle.read(f.size + 1)  # one byte more shows a file that grew since its hash
        except OSError:
            changed.append(f)
            continue
        if len(data) != f.size:
            changed.append(f)
            continue
        parts += (FRAME_HEADER.pack(len(data)), data)
        sent.append(f)
    return b"".join(parts), sent, changed


def _batch_records(body: bytes, expected: int) -> list[dict[str, Any]]:
    try:
        records = json.loads(body)["files"]
        if len(records) == expected and all(
                isinstance(r["uuid"], str) and isinstance(r["sha256"], str) and isinstance(r["size"], int)
                for r in records):
            return list(records)
    except (ValueError, KeyError, TypeError):
        pass
    raise UploadFailed(f"the server's answer to a batch upload of {expected} files is not the expected list")


def _read_small(path: str) -> bytes:
    with os.fdopen(open_regular(path), "rb") as handle:
        return handle.read()


async def run_all(jobs: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run the jobs together; the first failure cancels the rest and is raised as itself (the callers and
    their users want "server unreachable", not an ExceptionGroup)."""
    try:
        async with asyncio.TaskGroup() as group:
            for job in jobs:
                group.create_task(job)
    except BaseExceptionGroup as failed:
        first = failed.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from first.__cause__  # keep its own chain (e.g. the transport error behind it)


__all__ = ["IN_FLIGHT", "PROBE_ABOVE", "SERIAL", "BlobUploader", "Transfer", "TransferPolicy", "UploadFailed",
           "run_all"]
