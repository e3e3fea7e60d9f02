"""Lineage: which image came from which, for every image a target holds, built from two listings.

The API has no parent field. An image names the operation that made it (`operation_uuid`), and an operation
names the image it ran on (`image_uuid`), so the parent of an image is the source image of its producing
operation. Imports and images with no producing operation (public ones, shared ones) are roots; a run that
changed nothing returns its source image's uuid, so it adds no image and no edge.

Both lists are kept in a per-target sqlite cache (lineage_cache.py) and refreshed incrementally: each
refresh asks only for what was created since the last one (`since=`, minus a small overlap), so a tree of
10,000 images costs one page per 1,000 on the first load and usually one request per list afterwards, and
it shows images made by any client (the CLI, the TUI, contree-cli, an agent through contree-mcp). Three
things a `since` listing cannot see are asked for separately: tags (moved and removed on old images: one
tagged listing), operations that were still running at the last refresh (one GET each, there are few), and
producing operations older than the operation listing goes back (one GET each, remembered when missing).
`refresh(full=True)` re-lists everything and drops what the server no longer has.

Several processes share one cache file (the TUI, the CLI in another terminal), but each keeps its own tree in
memory, so each keeps its own high-water marks too, read from the file when it loads the file's rows: a mark
says "everything older is in memory here". Taking the file's mark at every refresh (as once done) skipped what
another process had listed first: the CLI's refresh after its run moved the mark past its new images, so the
TUI's `R` never asked for them (missing until a restart) and the next image's parent was unknown (a tree of
unconnected roots). The file's marks only start a new process, and only move forward.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TypeVar

from contree_client.exceptions import NotFoundError
from contree_client.models import Image, OperationResponse, OperationSummary

from contree_tui.client.connection import Connection
from contree_tui.client.lineage_cache import LineageCache
from contree_tui.client.observable import Observable
from contree_tui.client.records import ImageRecord, OperationRecord

T = TypeVar("T")

PAGE_SIZE = 1000  # the API's largest page
# Re-read this far behind the newest item already seen: a hosted Contree may make an item visible a little
# after a newer one, and `since` is inclusive on some servers and exclusive on others; duplicates are free.
OVERLAP = 5.0
MAX_LOOKUPS = 64  # single GETs per refresh for running or missing producing operations
CONCURRENT_LOOKUPS = 8


class LineageTree:
    """An immutable view of the lineage: images with `parent`/`children` filled in, and the operations.

    Built from the cache in one pass (no requests); `Lineage.tree` holds the current one."""

    def __init__(self, images: Mapping[str, ImageRecord], operations: Mapping[str, OperationRecord]) -> None:
        parents: dict[str, str | None] = {}
        children: dict[str, list[str]] = {}
        for image in images.values():
            op = operations.get(image.operation_uuid) if image.operation_uuid else None
            parent = op.image_uuid if op is not None and op.image_uuid and op.image_uuid != image.uuid else None
            parents[image.uuid] = parent
            if parent is not None:
                children.setdefault(parent, []).append(image.uuid)
        order = {uuid: (image.created_at, uuid) for uuid, image in images.items()}
        built: dict[str, ImageRecord] = {}
        for uuid, image in images.items():
            kids = tuple(sorted(children.get(uuid, ()), key=order.__getitem__))
            built[uuid] = replace(image, parent=parents[uuid], children=kids)
        self.images: Mapping[str, ImageRecord] = MappingProxyType(built)
        self.operations: Mapping[str, OperationRecord] = operations
        # an image whose parent the server does not list (deleted, another namespace) starts a tree of its own
        self.roots: tuple[str, ...] = tuple(sorted((u for u, p in parents.items() if p is None or p not in built),
                                                   key=order.__getitem__))

    def __len__(self) -> int:
        return len(self.images)

    def __contains__(self, uuid: object) -> bool:
        return uuid in self.images

    def image(self, uuid: str) -> ImageRecord | None:
        return self.images.get(uuid)

    def parent(self, uuid: str) -> str | None:
        image = self.images.get(uuid)
        return image.parent if image is not None else None

    def children(self, uuid: str) -> tuple[str, ...]:
        image = self.images.get(uuid)
        return image.children if image is not None else ()

    def ancestors(self, uuid: str) -> tuple[str, ...]:
        """Parent, grandparent, … up to the root (nearest first)."""
        chain: list[str] = []
        seen = {uuid}
        parent = self.parent(uuid)
        while parent is not None and parent not in seen:  # a cycle would be a server bug; do not hang on it
            chain.append(parent)
            seen.add(parent)
            parent = self.parent(parent)
        return tuple(chain)

    def descendants(self, uuid: str) -> tuple[str, ...]:
        """Every image below `uuid`, depth first, oldest branch first."""
        found: list[str] = []
        stack = list(reversed(self.children(uuid)))
        seen = {uuid}
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            found.append(current)
            stack.extend(reversed(self.children(current)))
        return tuple(found)

    def producing_operation(self, uuid: str) -> OperationRecord | None:
        image = self.images.get(uuid)
        if image is None or image.operation_uuid is None:
            return None
        return self.operations.get(image.operation_uuid)

    def operations_on(self, uuid: str) -> tuple[OperationRecord, ...]:
        """Runs whose source was `uuid`, including those that changed nothing (oldest first)."""
        return tuple(sorted((op for op in self.operations.values() if op.image_uuid == uuid),
                            key=lambda op: (op.created_at, op.uuid)))

    def walk(self, root: str | None = None) -> Iterator[tuple[int, ImageRecord]]:
        """(depth, image) depth first from `root`, or from every root; children oldest first."""
        stack = [(0, r) for r in reversed((root,) if root is not None else self.roots)]
        seen: set[str] = set()
        while stack:
            depth, uuid = stack.pop()
            image = self.images.get(uuid)
            if image is None or uuid in seen:
                continue
            seen.add(uuid)
            yield depth, image
            stack.extend((depth + 1, c) for c in reversed(image.children))

    def find(self, prefix: str) -> list[str]:
        """Images whose uuid starts with `prefix` (a short uuid as listings show it)."""
        prefix = prefix.lower()
        return sorted(u for u in self.images if u.startswith(prefix))


@dataclass(frozen=True)
class RefreshReport:
    full: bool
    requests: int
    images_listed: int  # rows the image listings returned (the new ones plus the overlap)
    operations_listed: int
    new_images: tuple[str, ...]
    new_operations: tuple[str, ...]
    changed_operations: tuple[str, ...]  # known before, with another status now
    seconds: float


class Lineage:
    """The lineage of one connection's target: `await refresh()`, then `tree` (also an Observable)."""

    def __init__(self, connection: Connection, *, cache: LineageCache | None = None, page_size: int = PAGE_SIZE,
                 overlap: float = OVERLAP) -> None:
        self.connection = connection
        self.cache = cache if cache is not None else LineageCache.for_key(connection.cache_key)
        self.page_size = page_size
        self.overlap = overlap
        self.current: Observable[LineageTree | None] = Observable(None)
        self._images: dict[str, ImageRecord] | None = None
        self._ops: dict[str, OperationRecord] = {}
        self._marks: dict[str, float | None] = {}  # this process's high-water marks (module docstring)
        self._lock = asyncio.Lock()

    def close(self) -> None:
        self.cache.close()

    @property
    def tree(self) -> LineageTree:
        """The current tree (from the cache, without asking the server: call `refresh` for news)."""
        tree = self.current.value
        if tree is None:
            self._ensure_loaded()
            tree = self._publish()
        return tree

    def _ensure_loaded(self) -> None:
        if self._images is None:
            # the marks first: rows are saved before their mark moves, so what is loaded next covers them
            self._marks = {name: self.cache.mark(name) for name in ("images", "operations")}
            self._images = self.cache.load_images()
            self._ops = self.cache.load_operations()

    def _publish(self) -> LineageTree:
        assert self._images is not None
        tree = LineageTree(dict(self._images), MappingProxyType(dict(self._ops)))
        self.current.set(tree)
        return tree

    async def refresh(self, *, full: bool = False) -> RefreshReport:
        """Fetch what is new since the last refresh (everything if `full` or on the first one)."""
        async with self._lock:
            started = time.perf_counter()
            if self._images is None:
                await asyncio.to_thread(self._ensure_loaded)
            counter = _Counter()
            image_mark = None if full else self._marks.get("images")
            op_mark = None if full else self._marks.get("operations")
            new_images, image_rows = await self._refresh_images(self._since(image_mark), counter)
            op_since = self._since(op_mark)
            listed, op_rows = await self._refresh_operations(op_since, counter)
            new_ops = [uuid for uuid in listed if uuid not in self._ops]
            changed = [uuid for uuid, op in listed.items()
                       if uuid in self._ops and self._ops[uuid].status != op.status]
            if full:
                gone = set(self._ops) - set(listed)
                for uuid in gone:
                    del self._ops[uuid]
                await asyncio.to_thread(self.cache.forget_operations, gone)
            await asyncio.to_thread(self.cache.save_operations, self._merge_operations(listed.values()))
            await self._advance("operations", max((op.created_at.timestamp() for op in listed.values()),
                                                  default=None))
            if op_since is not None:
                changed += await self._lookup_running(op_since, counter)
            await self._lookup_producers(counter)
            self._publish()
            return RefreshReport(full=image_mark is None, requests=counter.requests, images_listed=image_rows,
                                 operations_listed=op_rows, new_images=tuple(new_images),
                                 new_operations=tuple(new_ops), changed_operations=tuple(changed),
                                 seconds=time.perf_counter() - started)

    async def _refresh_images(self, since: int | None, counter: _Counter) -> tuple[list[str], int]:
        """List images created since `since` (all if None) and every tagged one; returns the new uuids."""
        client = self.connection.client
        rows = await self._pages(lambda limit, offset: client.list_images(limit=limit, offset=offset, since=since),
                                 lambda page: page.images, counter)
        listed = _fold_images(rows)
        # tags move between images and are removed, which a `since` listing cannot see: re-read them all
        tagged = _fold_images(await self._pages(
            lambda limit, offset: client.list_images(limit=limit, offset=offset, tagged=True),
            lambda page: page.images, counter))
        old = self._images
        assert old is not None
        for uuid, image in tagged.items():
            if uuid not in listed and uuid not in old:
                listed[uuid] = image  # older than the mark yet never seen (the cache was lost, say)
        tags = {uuid: image.tags for uuid, image in tagged.items()}
        fresh = {uuid: replace(image, tags=tags.get(uuid, ())) for uuid, image in listed.items()}
        new = [uuid for uuid in fresh if uuid not in old]
        if since is None:  # a full listing: what it did not return is gone
            self._images = fresh
            await asyncio.to_thread(self.cache.replace_images, fresh.values())
        else:
            for uuid, image in old.items():
                if uuid not in fresh and image.tags != tags.get(uuid, ()):
                    old[uuid] = replace(image, tags=tags.get(uuid, ()))
            old.update(fresh)
            await asyncio.to_thread(self.cache.save_images, fresh.values())
            await asyncio.to_thread(self.cache.replace_tags, tags)
        await self._advance("images", max((i.created_at.timestamp() for i in listed.values()), default=None))
        return new, len(rows)

    async def _refresh_operations(self, since: int | None, counter: _Counter
                                  ) -> tuple[dict[str, OperationRecord], int]:
        client = self.connection.client
        rows = await self._pages(
            lambda limit, offset: client.list_operations(limit=limit, offset=offset, since=since),
            lambda page: page, counter)
        listed: dict[str, OperationRecord] = {}
        for row in rows:
            record = OperationRecord.from_summary(row)
            listed[record.uuid] = record
        return listed, len(rows)

    async def _advance(self, name: str, newest: float | None) -> None:
        """Move this process's mark (and the file's, if behind) to `newest`, once its rows are saved."""
        if newest is None:
            return
        own = self._marks.get(name)
        if own is None or newest > own:
            self._marks[name] = newest
        mark = self.cache.mark(name)
        if mark is None or newest > mark:
            await asyncio.to_thread(self.cache.set_mark, name, newest)

    def _since(self, mark: float | None) -> int | None:
        # whole seconds: every server takes a Unix timestamp; the overlap covers the rounding
        return None if mark is None else max(0, math.floor(mark - self.overlap))

    async def _pages(self, fetch: Callable[[int, int], Awaitable[T]], items: Callable[[T], object],
                     counter: _Counter) -> list:
        """Every row of an offset-paged listing, a page per request (each retried through the connection)."""
        rows: list = []
        offset = 0
        while True:
            page = await self.connection.call(lambda o=offset: fetch(self.page_size, o))  # type: ignore[misc]
            counter.requests += 1
            got = items(page)
            batch = list(got) if isinstance(got, list) else []
            rows.extend(batch)
            if len(batch) < self.page_size:
                return rows
            offset += len(batch)

    def _merge_operations(self, ops: Iterable[OperationRecord]) -> list[OperationRecord]:
        """Fold records into the in-memory map (keeping details a list row lacks); returns those that
        changed, for the caller to save."""
        merged = []
        for op in ops:
            old = self._ops.get(op.uuid)
            record = old.merged(op) if old is not None else op
            if record != old:
                self._ops[op.uuid] = record
                merged.append(record)
        return merged

    async def _lookup_running(self, since: int, counter: _Counter) -> list[str]:
        """Operations still running at the last refresh that this one's listing did not reach: ask each.
        Returns those whose status changed."""
        stale = [op for op in self._ops.values() if not op.terminal and op.created_at.timestamp() < since]
        found, missing = await self._get_operations([op.uuid for op in stale[:MAX_LOOKUPS]], counter)
        changed = [op.uuid for op in found if op.status != self._ops[op.uuid].status]
        await asyncio.to_thread(self.cache.save_operations, self._merge_operations(found))
        for uuid in missing:
            self._ops.pop(uuid, None)
        await asyncio.to_thread(self.cache.forget_operations, missing)
        return changed

    async def _lookup_producers(self, counter: _Counter) -> None:
        """Producing operations no listing returned (older than the server's operation history goes back)."""
        assert self._images is not None
        skip = await asyncio.to_thread(self.cache.missing_operations)
        wanted = sorted({i.operation_uuid for i in self._images.values()
                         if i.operation_uuid and i.operation_uuid not in self._ops and i.operation_uuid not in skip})
        found, missing = await self._get_operations(wanted[:MAX_LOOKUPS], counter)
        await asyncio.to_thread(self.cache.save_operations, self._merge_operations(found))
        await asyncio.to_thread(self.cache.add_missing_operations, missing)

    async def _get_operations(self, uuids: list[str], counter: _Counter
                              ) -> tuple[list[OperationRecord], list[str]]:
        found: list[OperationRecord] = []
        missing: list[str] = []
        limit = asyncio.Semaphore(CONCURRENT_LOOKUPS)

        async def one(uuid: str) -> None:
            async with limit:
                try:
                    response = await self.connection.call(lambda: self.connection.client.get_operation_status(uuid))
                except NotFoundError:
                    missing.append(uuid)
                else:
                    found.append(OperationRecord.from_response(response))
                finally:
                    counter.requests += 1

        await asyncio.gather(*(one(u) for u in uuids))
        return found, missing

    # -- single items and what this client did itself ------------------------------------------------

    async def operation(self, uuid: str, *, detail: bool = False) -> OperationRecord:
        """One operation, from the cache when it has it (with `detail`: once its exit code and command are
        known); otherwise from the server (NotFoundError if it has none)."""
        uuid = uuid.lower()
        if self._images is None:
            await asyncio.to_thread(self._ensure_loaded)
        cached = self._ops.get(uuid)
        if cached is not None and (cached.detailed or (not detail and cached.terminal)):
            return cached
        response = await self.connection.call(lambda: self.connection.client.get_operation_status(uuid))
        return self.learn_operation(response)

    async def details(self, uuids: Iterable[str]) -> list[OperationRecord]:
        """`operation(uuid, detail=True)` for many, a few at a time."""
        limit = asyncio.Semaphore(CONCURRENT_LOOKUPS)

        async def one(uuid: str) -> OperationRecord:
            async with limit:
                return await self.operation(uuid, detail=True)

        return list(await asyncio.gather(*(one(u) for u in uuids)))

    def learn_operation(self, op: OperationResponse | OperationSummary | OperationRecord) -> OperationRecord:
        """Record an operation this client saw (a run it started, a status it read) without a refresh."""
        if self._images is None:
            self._ensure_loaded()
        if isinstance(op, OperationRecord):
            record = op
        elif isinstance(op, OperationResponse):
            record = OperationRecord.from_response(op)
        else:
            record = OperationRecord.from_summary(op)
        self.cache.save_operations(self._merge_operations([record]))
        if self.current.value is not None:
            self._publish()
        return self._ops[record.uuid]

    def learn_image(self, image: Image | ImageRecord) -> ImageRecord:
        """Record an image this client saw (a run's result it inspected, a tag it set)."""
        if self._images is None:
            self._ensure_loaded()
        assert self._images is not None
        record = image if isinstance(image, ImageRecord) else ImageRecord.from_wire(image)
        old = self._images.get(record.uuid)
        if old is not None and not isinstance(image, ImageRecord):
            record = replace(record, tags=tuple(dict.fromkeys((*record.tags, *old.tags))))
        if record != old:
            self._images[record.uuid] = record
            self.cache.save_images([record])
            if self.current.value is not None:
                self._publish()
        return record

    def set_tags(self, uuid: str, tags: tuple[str, ...]) -> None:
        """After a tag was set or removed here: a tag lives on one image, so it leaves any other."""
        if self._images is None:
            self._ensure_loaded()
        assert self._images is not None
        for other, image in list(self._images.items()):
            kept = tuple(t for t in image.tags if t not in tags) if other != uuid else tags
            if kept != image.tags:
                self._images[other] = replace(image, tags=kept)
                self.cache.set_image_tags(other, kept)
        if self.current.value is not None:
            self._publish()


@dataclass
class _Counter:
    requests: int = 0


def _fold_images(rows: Iterable[Image]) -> dict[str, ImageRecord]:
    """Listing rows by uuid; a server that lists an image once per tag gives it all its tags."""
    folded: dict[str, ImageRecord] = {}
    for row in rows:
        record = ImageRecord.from_wire(row)
        old = folded.get(record.uuid)
        if old is not None:
            record = replace(old, tags=tuple(dict.fromkeys((*old.tags, *record.tags))))
        folded[record.uuid] = record
    return folded


__all__ = ["Lineage", "LineageTree", "RefreshReport"]
