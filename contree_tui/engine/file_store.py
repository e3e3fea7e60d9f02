"""Uploaded files (POST /v1/files): content-addressed blobs under the state dir, one row each in the store.

A blob's name is its SHA-256, so the same bytes uploaded twice are stored once; it is written under a
temporary name and renamed into place, so a failed upload never leaves a half-written blob behind.

Our extension POST /v1/x/files/batch takes many small files in one body (add_files_framed): the official API
has one file per request, and a request costs ~1 ms of engine CPU and ~1.2 ms of client CPU in Python, so a
first sync of 10,000 small files spent 20-70 s on requests alone; 256 files per request make it ~40 requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import uuid
from collections.abc import AsyncIterable, AsyncIterator

from contree_tui.engine.disk_space import require_free
from contree_tui.engine.models import EngineError, StoredFile
from contree_tui.engine.store import Store

UPLOAD_BATCH = 1 << 20  # bytes an upload gathers before one thread hop writes and hashes them
# A whole body up to this size is written from the event loop: a thread hop (and the GIL hand-offs around
# it) cost more than writing a few KiB, and a first sync sends thousands of such files one per request.
INLINE_WRITE = 64 * 1024
# A batch body is frames: an 8-byte big-endian length, then that many bytes of one file.
FRAME_HEADER = struct.Struct(">Q")
# Caps that bound what one batch request can make the engine hold or do: the client sends at most 256 files
# and 1 MiB per batch and files up to 256 KiB (larger ones go one per POST /v1/files, streamed), so these
# leave room without letting one frame claim gigabytes of memory (a frame is held whole until written).
BATCH_MAX_FILES = 4096
BATCH_MAX_FILE = 4 << 20
BATCH_WRITE_FILES = 256  # complete files gathered before one thread hop writes them


class BatchError(EngineError):
    """A batch body that breaks the framing or a cap: 400 with what and where."""

    def __init__(self, message: str) -> None:
        super().__init__(f"batch upload: {message}", status=400)


class FileStore:
    def __init__(self, store: Store, blobs_dir: str, min_free_bytes: int) -> None:
        self.store = store
        self._blobs_dir = blobs_dir
        self._min_free = min_free_bytes

    def add_file(self, data: bytes) -> StoredFile:
        digest = self._write_blob(data)
        return self.store.add_file(str(uuid.uuid4()), digest, len(data))

    def _write_blob(self, data: bytes) -> str:
        """Store `data` as a blob (unless one with its digest exists); returns the digest."""
        digest = hashlib.sha256(data).hexdigest()
        blob = f"{self._blobs_dir}/{digest}"
        if not os.path.exists(blob):
            tmp = f"{self._blobs_dir}/.{digest}.{uuid.uuid4().hex}"
            # created read-only and written through the fd: no chmod, no file object (a batch of 10,000
            # small files took 1.27 s with open()+chmod, 0.71 s like this)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            except BaseException:
                os.close(fd)
                os.unlink(tmp)
                raise
            os.close(fd)
            os.rename(tmp, blob)
        return digest

    def _write_blobs(self, files: list[bytes]) -> list[tuple[str, str, int]]:
        return [(str(uuid.uuid4()), self._write_blob(data), len(data)) for data in files]

    async def add_files_framed(self, chunks: AsyncIterable[bytes]) -> list[StoredFile]:
        """POST /v1/x/files/batch: many files in one body, each framed (FRAME_HEADER then its bytes), each
        stored as add_file stores one (same blob, same row: the same uuid as a single upload of those bytes);
        the records come back in the body's order. Files are written BATCH_WRITE_FILES (or 1 MiB) at a time
        from a thread and recorded in one transaction.

        A body that breaks off inside a file or breaks a cap is a 400 (BatchError); the files written before
        the break are recorded all the same (complete blobs, as if uploaded one by one), so no blob is left
        half-written or without its row."""
        require_free(self._blobs_dir, self._min_free, "upload")
        written: list[tuple[str, str, int]] = []
        ready: list[bytes] = []  # complete files not written yet
        ready_bytes = 0
        buffer = bytearray()
        need = -1  # bytes of the file being read; -1 while reading a frame header
        try:
            async for chunk in chunks:
                buffer += chunk
                pos = 0
                while True:
                    if need < 0:
                        if len(buffer) - pos < FRAME_HEADER.size:
                            break
                        (need,) = FRAME_HEADER.unpack_from(buffer, pos)
                        pos += FRAME_HEADER.size
                        index = len(written) + len(ready)
                        if index >= BATCH_MAX_FILES:
                            raise BatchError(f"more than {BATCH_MAX_FILES} files in one request")
                        if need > BATCH_MAX_FILE:
                            raise BatchError(f"file {index} is {need} bytes; a batch takes files up to "
                                             f"{BATCH_MAX_FILE} bytes (send larger ones to POST /v1/files)")
                    if len(buffer) - pos < need:
                        break
                    ready.append(bytes(buffer[pos:pos + need]))
                    ready_bytes += need
                    pos += need
                    need = -1
                del buffer[:pos]
                if ready_bytes >= UPLOAD_BATCH or len(ready) >= BATCH_WRITE_FILES:
                    written += await asyncio.to_thread(self._write_blobs, ready)
                    ready, ready_bytes = [], 0
                    require_free(self._blobs_dir, self._min_free, "upload")
            if need >= 0 or buffer:
                index = len(written) + len(ready)
                if need >= 0:
                    raise BatchError(f"the body ends inside file {index} ({len(buffer)} of its {need} bytes)")
                raise BatchError(f"the body ends inside the header of file {index} "
                                 f"({len(buffer)} of {FRAME_HEADER.size} bytes)")
            written += await asyncio.to_thread(self._write_blobs, ready)
        finally:
            stored = self.store.add_files(written) if written else []
        return stored

    async def add_file_stream(self, chunks: AsyncIterable[bytes]) -> StoredFile:
        """add_file for a body that arrives in chunks: written to disk 1 MiB at a time (from a thread, with
        the hash), so memory holds at most one batch; a stream that fails leaves no file behind. A body that
        ends within its first batch is written whole, from the event loop when it is small (INLINE_WRITE)."""
        require_free(self._blobs_dir, self._min_free, "upload")
        body = aiter(chunks)
        first = bytearray()
        async for chunk in body:
            first += chunk
            if len(first) >= UPLOAD_BATCH:
                break
        else:  # all of it is here, and small
            data = bytes(first)
            if len(data) <= INLINE_WRITE:
                digest = self._write_blob(data)
            else:
                digest = await asyncio.to_thread(self._write_blob, data)
            return self.store.add_file(str(uuid.uuid4()), digest, len(data))
        return await self._add_file_streamed(first, body)

    async def _add_file_streamed(self, first: bytearray, chunks: AsyncIterator[bytes]) -> StoredFile:
        tmp = f"{self._blobs_dir}/.upload.{uuid.uuid4().hex}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        digest, size, batch = hashlib.sha256(), 0, first

        def write(data: bytes) -> None:
            digest.update(data)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]

        try:
            size += len(batch)
            await asyncio.to_thread(write, bytes(batch))
            batch.clear()
            async for chunk in chunks:
                batch += chunk
                if len(batch) >= UPLOAD_BATCH:
                    size += len(batch)
                    await asyncio.to_thread(write, bytes(batch))
                    batch.clear()
                    require_free(self._blobs_dir, self._min_free, "upload")
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
