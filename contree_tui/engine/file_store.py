"""Uploaded files (POST /v1/files): content-addressed blobs under the state dir, one row each in the store.

A blob's name is its SHA-256, so the same bytes uploaded twice are stored once; it is written under a
temporary name and renamed into place, so a failed upload never leaves a half-written blob behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterable

from contree_tui.engine.disk_space import require_free
from contree_tui.engine.models import StoredFile
from contree_tui.engine.store import Store

UPLOAD_BATCH = 1 << 20  # bytes an upload gathers before one thread hop writes and hashes them


class FileStore:
    def __init__(self, store: Store, blobs_dir: str, min_free_bytes: int) -> None:
        self.store = store
        self._blobs_dir = blobs_dir
        self._min_free = min_free_bytes

    def add_file(self, data: bytes) -> StoredFile:
        digest = hashlib.sha256(data).hexdigest()
        blob = f"{self._blobs_dir}/{digest}"
        if not os.path.exists(blob):
            tmp = f"{self._blobs_dir}/.{digest}.{uuid.uuid4().hex}"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o444)
            os.rename(tmp, blob)
        return self.store.add_file(str(uuid.uuid4()), digest, len(data))

    async def add_file_stream(self, chunks: AsyncIterable[bytes]) -> StoredFile:
        """add_file for a body that arrives in chunks: written to disk 1 MiB at a time (from a thread, with
        the hash), so memory holds at most one batch; a stream that fails leaves no file behind."""
        require_free(self._blobs_dir, self._min_free, "upload")
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
