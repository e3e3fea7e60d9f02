"""Reading an image's files over the inspect API: list a directory, walk the whole tree, read the head of a
file, download one to a local path, grep. No Textual here: the TUI's snapshot detail view and the headless
CLI can both use it.

Images are immutable, so every listing is cached for good (per image and directory, bounded): the diff of a
child against its parent lists the parent once, and the next diff down the chain reuses it.

Every failure leaves as `InspectError`, whose message says what went wrong in the user's words.
"""

from __future__ import annotations

import asyncio
import os
import stat
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from contree_client.exceptions import APIConnectionError, APIStatusError
from contree_client.models import FileItem

from contree_tui.client.connection import Connection, ConnectionProblem

T = TypeVar("T")

# Each list request forks a helper that mounts the image (~11 ms on the embedded engine): a few in flight
# hide the round trips without flooding a 2-core engine.
CONCURRENT_LISTS = 4
LISTING_CACHE = 4096  # directories (a busybox image has 15, a Debian one ~1,500)

EntryKind = Literal["dir", "file", "symlink", "other"]


class InspectError(Exception):
    """A failed read of an image; `str()` is the reason, for the user."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One directory entry, with its absolute path inside the image."""

    path: str
    kind: EntryKind
    size: int
    mode: int
    uid: int
    gid: int
    mtime: int  # whole seconds: all the API gives
    target: str = ""  # a symlink's target

    @classmethod
    def from_wire(cls, directory: str, item: FileItem) -> Entry:
        kind: EntryKind = ("symlink" if item.is_symlink else "dir" if item.is_dir
                           else "file" if item.is_regular else "other")
        return cls(path=join(directory, item.path), kind=kind, size=item.size, mode=item.mode, uid=item.uid,
                   gid=item.gid, mtime=item.mtime, target=item.symlink_to or "")

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1] or "/"

    @property
    def permissions(self) -> str:
        return stat.filemode(self.mode)


@dataclass(frozen=True, slots=True)
class FileHead:
    """The start of a file; `truncated` when there was more."""

    data: bytes
    truncated: bool

    @property
    def binary(self) -> bool:
        """Git's rule: a NUL byte in the first 8 KiB."""
        return b"\0" in self.data[:8192]

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class GrepHit:
    path: str
    line: int
    text: str  # without its line terminator


@dataclass(frozen=True, slots=True)
class GrepHits:
    hits: tuple[GrepHit, ...]
    truncated: bool  # the server stopped at its budget: there are more


def join(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}"


def parent_dir(path: str) -> str:
    head = path.rstrip("/").rsplit("/", 1)[0]
    return head or "/"


class ImageFiles:
    """The inspect API of one connection, with a listing cache shared by every image it reads."""

    def __init__(self, connection: Connection, *, cache_size: int = LISTING_CACHE) -> None:
        self.connection = connection
        self.client = connection.client
        self._listings: OrderedDict[tuple[str, str], tuple[Entry, ...]] = OrderedDict()
        self._cache_size = cache_size
        self.requests = 0  # list requests sent (the benchmark and tests count them)

    async def _call(self, fn: Callable[[], Awaitable[T]], what: str, image: str) -> T:
        try:
            return await self.connection.call(fn)
        except (ConnectionProblem, APIStatusError, APIConnectionError, TimeoutError) as exc:
            raise InspectError(describe(exc, what, image)) from exc

    async def list_dir(self, image: str, path: str) -> tuple[Entry, ...]:
        """The entries of directory `path`, sorted by name."""
        path = normalize(path)
        key = (image, path)
        cached = self._listings.get(key)
        if cached is not None:
            self._listings.move_to_end(key)
            return cached
        self.requests += 1
        listing = await self._call(lambda: self.client.inspect_image_list(image, path), path, image)
        entries = tuple(sorted((Entry.from_wire(path, item) for item in listing.files), key=lambda e: e.name))
        self._listings[key] = entries
        while len(self._listings) > self._cache_size:
            self._listings.popitem(last=False)
        return entries

    async def walk(self, image: str, root: str = "/", *,
                   concurrency: int = CONCURRENT_LISTS) -> dict[str, Entry]:
        """Every entry under `root` (not following symlinks), by absolute path: one list per directory,
        `concurrency` in flight."""
        found: dict[str, Entry] = {}
        limit = asyncio.Semaphore(concurrency)

        async def visit(directory: str) -> None:
            async with limit:
                entries = await self.list_dir(image, directory)
            subdirs = []
            for entry in entries:
                found[entry.path] = entry
                if entry.kind == "dir":
                    subdirs.append(entry.path)
            await asyncio.gather(*(visit(d) for d in subdirs))

        await visit(normalize(root))
        return found

    async def _stream(self, image: str, path: str) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.client.inspect_image_download_stream(image, path):
                yield chunk
        except (APIStatusError, APIConnectionError, TimeoutError) as exc:
            raise InspectError(describe(exc, path, image)) from exc

    async def read_head(self, image: str, path: str, limit: int) -> FileHead:
        """Up to `limit` bytes from the start of the file; the rest is not transferred."""
        data = bytearray()
        truncated = False
        stream = self._stream(image, path)
        try:
            async for chunk in stream:
                room = limit - len(data)
                data += chunk[:room]
                if len(chunk) > room:
                    truncated = True
                    break
        finally:
            await stream.aclose()  # closes the response: the server stops reading the file
        return FileHead(bytes(data), truncated)

    async def read(self, image: str, path: str) -> bytes:
        head = await self.read_head(image, path, 1 << 62)
        return head.data

    async def download(self, image: str, path: str, target: str | Path) -> tuple[Path, int]:
        """Save the file at `target` (into it, if it is a directory); written beside it and renamed into place,
        so a failure leaves no half-written file. Returns where it went and its size."""
        dest = Path(target).expanduser()
        if dest.is_dir():
            dest = dest / (path.rstrip("/").rsplit("/", 1)[-1] or "download")
        try:
            size = await save_stream(self._stream(image, path), dest)
        except OSError as exc:
            raise InspectError(f"cannot write {dest}: {exc.strerror or exc}") from exc
        return dest, size

    async def grep(self, image: str, pattern: str, path: str = "/", *, max_total: int = 500,
                   case: Literal["sensitive", "insensitive", "smart"] = "smart") -> GrepHits:
        """Lines matching the regex `pattern` (Rust syntax) under `path`, file by file."""
        if not pattern:
            raise InspectError("grep: an empty pattern matches everything; type what to look for")
        result = await self._call(lambda: self.client.inspect_image_grep(image, pattern, path=normalize(path),
                                                                         max_total=max_total, case=case),
                                  path, image)
        hits = tuple(GrepHit(m.path, m.line_number, m.line_text.rstrip("\r\n"))
                     for m in result.matches if m.type == "match")
        return GrepHits(hits, bool(result.truncated))


def normalize(path: str) -> str:
    if not path.startswith("/"):
        raise InspectError(f"{path!r} is not an absolute path in the image")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


def describe(exc: BaseException, path: str, image: str) -> str:
    where = f"in {image[:8]}"
    if isinstance(exc, APIStatusError):
        if exc.status == 404:
            return f"{path}: no such file or directory {where}"
        if exc.status == 422:
            return f"{path} {where}: {exc.error}" if exc.error else f"{path}: wrong kind of file {where}"
        if exc.status == 400:
            return f"{exc.error}"
        return f"{path} {where}: the server answered HTTP {exc.status}: {exc.error}"
    if isinstance(exc, TimeoutError):
        return f"{path} {where}: timed out"
    return f"{path} {where}: {exc}"


async def save_stream(chunks: AsyncIterator[bytes], target: Path) -> int:
    """Write `chunks` beside `target` and rename the file into place: a failure leaves no half-written file.
    Returns the size written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    size = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            async for chunk in chunks:
                handle.write(chunk)
                size += len(chunk)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return size
