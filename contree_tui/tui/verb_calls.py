"""The backend calls behind the command bar's verbs (tag, untag, list, download, import, cancel, wait, the
two-stage interrupt), mixed into data.ContreeBackend so data.py stays the one door to the client layer
without growing past a sitting. Every failure leaves as BackendError (backend_error.py) with the reason to show.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from contree_client.exceptions import APIStatusError, NotFoundError

from contree_tui.client.image_files import save_stream
from contree_tui.client.image_import import (
    ImportResult,
    ImportSpec,
    ProgressSink,
    follow_import,
    learn_imported,
    start_import,
)
from contree_tui.client.operations import (
    EventCursor,
    Interrupter,
    InterruptStage,
    cancel_operation,
    wait_operations,
)
from contree_tui.tui.backend_error import BackendError

if TYPE_CHECKING:
    from contree_tui.client.connection import Connection
    from contree_tui.client.lineage import Lineage as ClientLineage

T = TypeVar("T")


@dataclass(frozen=True)
class DirEntry:
    name: str
    is_dir: bool


class VerbCalls:
    """Needs `connection`, `images` (client lineage) and `_call`/`_guard` from ContreeBackend."""

    connection: Connection
    images: ClientLineage

    async def _call(self, fn: Callable[[], Awaitable[T]], *, idempotent: bool = True) -> T:
        raise NotImplementedError

    async def _guard(self, call: Awaitable[T]) -> T:
        raise NotImplementedError

    async def tag(self, image: str, name: str, current: tuple[str, ...]) -> tuple[str, ...]:
        """Tag `image`, whose tags are `current` (the tag leaves any other image, as on the server); the
        image's tags after."""
        client = self.connection.client
        tagged = await self._call(lambda: client.update_image_tag(image, name))
        tags = tuple(dict.fromkeys((*current, name)))
        self.images.learn_image(tagged)  # a run's result this client never listed yet
        self.images.set_tags(image, tags)
        return tags

    async def untag(self, image: str, name: str | None, current: tuple[str, ...]) -> tuple[str, ...]:
        """Remove `name` (None: every tag) from `image`, whose tags are `current`; its tags after."""
        if name is not None and name not in current:
            raise BackendError(f"the working snapshot has no tag {name!r}")
        if not current:
            raise BackendError("the working snapshot has no tag")
        client = self.connection.client
        try:
            await self._call(lambda: client.delete_image_tag(image, tag=name))
        except BackendError as exc:
            if isinstance(exc.__cause__, NotFoundError):
                raise BackendError(f"the working snapshot has no tag {name!r}") from None
            raise
        tags = () if name is None else tuple(t for t in current if t != name)
        self.images.set_tags(image, tags)
        return tags

    async def list_dir(self, image: str, path: str) -> list[DirEntry]:
        """The entries of directory `path` inside `image` (for completion)."""
        client = self.connection.client
        listing = await self._call(lambda: client.inspect_image_list(image, path))
        entries = []
        for item in listing.files:
            name = item.path.rstrip("/").rsplit("/", 1)[-1]
            if name:
                entries.append(DirEntry(name, bool(item.is_dir)))
        return entries

    async def download(self, image: str, path: str, dest: Path) -> int:
        """Copy the regular file `path` of `image` to `dest` (written aside, renamed into place); its size."""
        client = self.connection.client
        try:
            return await self._guard(save_stream(client.inspect_image_download_stream(image, path), dest))
        except BackendError as exc:
            cause = exc.__cause__
            if isinstance(cause, NotFoundError):
                raise BackendError(f"no file {path} in the working snapshot") from None
            if isinstance(cause, APIStatusError) and cause.status == 422:
                raise BackendError(f"{path} is not a regular file (a directory?)") from None
            raise

    async def import_image(self, ref: str, tag: str | None = None) -> str:
        """Start importing `ref` (a registry reference or an offline source); the import operation's uuid."""
        return await self._guard(start_import(self.connection, ImportSpec(ref=ref, tag=tag)))

    async def follow_import(self, operation: str, on_change: ProgressSink,
                            cursor: EventCursor | None = None) -> ImportResult:
        """Until the import ends, `on_change` at each event (from the one after `cursor`'s); a success's image
        is put into the lineage."""
        result = await self._guard(follow_import(self.connection, operation, on_change, cursor=cursor))
        if result.succeeded and result.image:
            await self._guard(learn_imported(self.connection, self.images, result))
        return result

    def interrupter(self, operation: str) -> Interrupter:
        return Interrupter(self.connection, operation)

    async def interrupt(self, interrupter: Interrupter) -> InterruptStage:
        return await self._guard(interrupter.interrupt())

    async def cancel(self, operation: str) -> bool:
        """False when it had already ended."""
        return await self._guard(cancel_operation(self.connection, operation))

    async def wait(self, operations: list[str]) -> dict[str, Any]:
        """Until every one of `operations` has ended: uuid -> the server's final status."""
        result = await self._guard(wait_operations(self.connection, operations))
        return {uuid: response.status for uuid, response in result.done.items()}
