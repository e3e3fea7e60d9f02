"""A workspace: one local project folder on one Contree target — the connection, the lineage, the folder's
working position and its sync settings — and how references typed by a user name images and operations.

Image references: a UUID; a unique prefix of one the lineage knows (as listings show them: `3f2a9c1e`);
`tag:NAME` or a bare tag; `@` for the working snapshot and `@-N` for its N-th ancestor.
Operation references: a UUID or a unique prefix of a known one; `@` for the folder's last run.
"""

from __future__ import annotations

import re
from pathlib import Path

from contree_client.exceptions import BadRequestError, NotFoundError
from contree_client.runtime import is_uuid

from contree_tui.client.connection import Connection, open_connection
from contree_tui.client.lineage import Lineage
from contree_tui.client.position import PositionStore, SyncSettings, WorkingPosition, folder_key
from contree_tui.client.reconnect import Backoff
from contree_tui.client.sync import Syncer

DEFAULT_IMAGE = "busybox:latest"  # the embedded engine always has it; hosted Contree lists it publicly
_PREFIX = re.compile(r"^[0-9a-f][0-9a-f-]{3,35}$")
_RELATIVE = re.compile(r"^@(?:-(\d+))?$")


class UnknownReference(LookupError):
    """A reference that names nothing, or more than one thing; the message says which and why."""


class Workspace:
    def __init__(self, connection: Connection, folder: str | Path, *, lineage: Lineage | None = None,
                 positions: PositionStore | None = None) -> None:
        self.connection = connection
        self.folder = Path(folder_key(folder))
        self.lineage = lineage if lineage is not None else Lineage(connection)
        self.positions = positions if positions is not None else PositionStore()
        self.position = WorkingPosition(self.folder, connection.cache_key, self.positions)
        self._syncer: Syncer | None = None
        self._syncer_settings: tuple[str, tuple[str, ...]] = ("", ())

    @classmethod
    async def open(cls, folder: str | Path, *, profile: str | None = None, state_dir: str | Path | None = None,
                   backoff: Backoff | None = None) -> Workspace:
        connection = await open_connection(profile, state_dir=state_dir, backoff=backoff)
        return cls(connection, folder)

    async def aclose(self) -> None:
        if self._syncer is not None:
            self._syncer.close()
        self.lineage.close()
        self.positions.close()
        await self.connection.aclose()

    async def __aenter__(self) -> Workspace:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- sync ------------------------------------------------------------------------------------------

    @property
    def sync_settings(self) -> SyncSettings:
        return self.positions.sync_settings(str(self.folder))

    def save_sync_settings(self, settings: SyncSettings) -> None:
        self.positions.save_sync_settings(str(self.folder), settings)

    def syncer(self, settings: SyncSettings | None = None) -> Syncer:
        settings = settings or self.sync_settings
        if self._syncer is None or self._syncer_settings != (settings.destination, settings.excludes):
            if self._syncer is not None:
                self._syncer.close()
            self._syncer = Syncer(self.connection, self.folder, settings.destination, excludes=settings.excludes)
            self._syncer_settings = (settings.destination, settings.excludes)
        return self._syncer

    # -- references ------------------------------------------------------------------------------------

    async def resolve_image(self, ref: str) -> str:
        """The image uuid `ref` names (checked with the server); UnknownReference if none or ambiguous."""
        ref = ref.strip()
        relative = _RELATIVE.match(ref)
        if relative:
            return await self._relative(ref, int(relative.group(1) or 0))
        client = self.connection.client
        if ref.startswith("tag:"):
            return await self._by_tag(ref[4:], ref)
        if is_uuid(ref):
            try:
                image = await self.connection.call(lambda: client.inspect_image(ref.lower()))
            except NotFoundError:
                raise UnknownReference(f"no image {ref}") from None
            return self.lineage.learn_image(image).uuid
        if _PREFIX.match(ref.lower()):
            matches = self.lineage.tree.find(ref)
            if not matches:
                await self.lineage.refresh()
                matches = self.lineage.tree.find(ref)
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                shown = ", ".join(m[:13] for m in matches[:4])
                raise UnknownReference(f"{ref!r} is ambiguous: {len(matches)} images start with it ({shown}…)")
        return await self._by_tag(ref, ref)

    async def _by_tag(self, tag: str, ref: str) -> str:
        if not tag:
            raise UnknownReference("an empty tag names no image")
        client = self.connection.client
        try:
            return (await self.connection.call(lambda: client.inspect_find_image_by_tag(tag))).lower()
        except (NotFoundError, BadRequestError):
            what = "no image tagged" if ref.startswith("tag:") else "no image with a uuid (prefix) or tag"
            raise UnknownReference(f"{what} {tag!r}") from None

    async def _relative(self, ref: str, back: int) -> str:
        image = self.position.image
        if image is None:
            raise UnknownReference(f"{ref}: this folder has no working snapshot yet (run something, or "
                                  f"`contree-tui use IMAGE`)")
        if back == 0:
            return image
        ancestors = self.lineage.tree.ancestors(image)
        if len(ancestors) < back:
            await self.lineage.refresh()
            ancestors = self.lineage.tree.ancestors(image)
        if len(ancestors) < back:
            raise UnknownReference(f"{ref}: the working snapshot has only {len(ancestors)} ancestors")
        return ancestors[back - 1]

    async def base_image(self, ref: str | None = None) -> str:
        """What a run starts from: `ref` if given, else the working snapshot, else DEFAULT_IMAGE."""
        if ref:
            return await self.resolve_image(ref)
        current = self.position.image
        if current is not None:
            return current
        try:
            return await self._by_tag(DEFAULT_IMAGE, f"tag:{DEFAULT_IMAGE}")
        except UnknownReference:
            raise UnknownReference(f"this folder has no working snapshot yet and {self.connection.target.describe()} "
                                  f"has no {DEFAULT_IMAGE}: pass --image IMAGE (or `contree-tui use IMAGE`)") from None

    async def resolve_operation(self, ref: str) -> str:
        ref = ref.strip().lower()
        if ref == "@":
            for entry in reversed(self.position.history()):
                if entry.operation:
                    return entry.operation
            raise UnknownReference("@: no run recorded for this folder yet")
        if is_uuid(ref):
            return ref
        if _PREFIX.match(ref):
            ops = self.lineage.tree.operations
            matches = sorted(u for u in ops if u.startswith(ref))
            if not matches:
                await self.lineage.refresh()
                matches = sorted(u for u in self.lineage.tree.operations if u.startswith(ref))
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise UnknownReference(f"{ref!r} is ambiguous: {len(matches)} operations start with it")
        raise UnknownReference(f"no operation {ref!r} (give its uuid or a unique prefix)")


__all__ = ["DEFAULT_IMAGE", "UnknownReference", "Workspace"]
