"""Reading an image without running it, as the API offers it: list, read, archive, grep.

Each call starts a confined helper (engine/inspect.py, sandbox/helper.py) on the image's overlay lowers;
this module only picks the operation, validates a grep query and gathers the helper's payload.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from contree_tui.engine.grep import GrepQuery
from contree_tui.engine.inspect import IDLE_SECONDS, open_in_image
from contree_tui.engine.models import Image
from contree_tui.engine.sandbox.helper import HelperProcess, HelperSet

MAX_COLLECTED = 256 << 20  # the most an inspect call through this API gathers in memory (HTTP streams)


class ImageReads:
    def __init__(self, helpers: HelperSet, lowers_for: Callable[[Image], list[str]], inspect_root: str) -> None:
        self.helpers = helpers
        self._lowers_for = lowers_for
        # Every helper mounts its image here, in a mount namespace of its own: the host sees an empty dir.
        self._inspect_root = inspect_root
        # Images a helper has (or is about to have) mounted: deleting one of them now would pull its layer
        # dirs from under a running read (an export of / takes seconds to minutes), so a delete waits for 0.
        self.reading: Counter[str] = Counter()

    async def open_in_image(self, image: Image, operation: str, path: str,
                            query: GrepQuery | None = None) -> tuple[dict[str, Any], HelperProcess]:
        """Start a confined `operation` (list, list-text, read, archive, grep) on `path`; its header and the
        helper, whose payload is read with `helper.chunks(IDLE_SECONDS)` (or dropped with close())."""
        if operation == "grep":
            assert query is not None
            query = query.validate()
            path = query.paths[0]
        self.reading[image.uuid] += 1  # before the first await: a delete in between sees the read coming
        try:
            header, helper = await open_in_image(self.helpers, self._lowers_for(image), self._inspect_root,
                                                 operation, path, query)
        except BaseException:
            self._done_reading(image.uuid)
            raise
        helper.when_reaped(lambda: self._done_reading(image.uuid))
        return header, helper

    def _done_reading(self, uuid: str) -> None:
        self.reading[uuid] -= 1
        if self.reading[uuid] <= 0:
            del self.reading[uuid]

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
