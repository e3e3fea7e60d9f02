"""The files of a snapshot as the detail view reads them: the surface a backend offers (the real one over
client/image_files.py and client/snapshot_diff.py; tests pass a frozen one). Failures are the client's
InspectError, whose message is the toast's reason."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Protocol

from contree_client.exceptions import APIConnectionError, APIStatusError

from contree_tui.client.connection import ConnectionProblem
from contree_tui.client.file_diff import FileDiff, diff_file
from contree_tui.client.image_details import ImageDetails, image_details
from contree_tui.client.image_files import Entry, FileHead, GrepHits, ImageFiles
from contree_tui.client.snapshot_diff import SnapshotDiff, diff_images


class SnapshotFiles(Protocol):
    async def list_dir(self, image: str, path: str) -> tuple[Entry, ...]: ...

    async def read_head(self, image: str, path: str, limit: int) -> FileHead: ...

    async def download(self, image: str, path: str, target: str | Path) -> tuple[Path, int]: ...

    async def grep(self, image: str, pattern: str, path: str = "/") -> GrepHits: ...

    async def diff(self, parent: str, child: str, parent_created: datetime | None) -> SnapshotDiff: ...

    async def details(self, image: str) -> ImageDetails | None: ...

    async def file_diff(self, old_image: str | None, new_image: str, path: str) -> FileDiff: ...


class ClientSnapshotFiles:
    def __init__(self, files: ImageFiles) -> None:
        self.files = files

    async def list_dir(self, image: str, path: str) -> tuple[Entry, ...]:
        return await self.files.list_dir(image, path)

    async def read_head(self, image: str, path: str, limit: int) -> FileHead:
        return await self.files.read_head(image, path, limit)

    async def download(self, image: str, path: str, target: str | Path) -> tuple[Path, int]:
        return await self.files.download(image, path, target)

    async def grep(self, image: str, pattern: str, path: str = "/") -> GrepHits:
        return await self.files.grep(image, pattern, path)

    async def diff(self, parent: str, child: str, parent_created: datetime | None) -> SnapshotDiff:
        return await diff_images(self.files, parent, child, parent_created=parent_created)

    async def file_diff(self, old_image: str | None, new_image: str, path: str) -> FileDiff:
        return await diff_file(self.files, old_image, new_image, path)

    async def details(self, image: str) -> ImageDetails | None:
        """Sizes and config when the server says them (our engine's extension); None when it cannot."""
        connection = self.files.connection
        try:
            details = await image_details(connection, image)  # type: ignore[arg-type]
            if details.size is not None or details.operation is None:
                return details
            # a server without x_engine (hosted Contree): the bytes its producing run wrote for the layer, the
            # spec's image_size; unknown (an import, another namespace's image) stays unknown, never a guess
            operation = details.operation
            response = await connection.call(lambda: connection.client.get_operation_status(operation))
        except (ConnectionProblem, APIStatusError, APIConnectionError, TimeoutError):
            return None  # optional information: the header simply goes without it
        size = getattr(response, "image_size", None)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return details
        return dataclasses.replace(details, size=size, size_from_run=True)
