"""The files of the frozen session's images (tests/tui/frozen.py), for SVG snapshots of the detail view.

The fake sits under the real client code: it stands in for the official client's inspect calls (list a
directory, stream a file, grep, the raw image JSON) and answers with the official client's own models, so the
detail view reads it through the real ImageFiles and diff_images (sorting, Entry.from_wire, the walk, the
content check of same-metadata files) exactly as it reads a server. The trees follow the frozen runs loosely;
what `make` left in the working snapshot is invented, to put an addition, a modification and a removal on
screen.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from contree_client.exceptions import APIStatusError
from contree_client.models import DirectoryList, FileItem, GrepMatch, GrepResult, GrepSubmatch
from contree_client.runtime import RequestSpec, ResponseData

from contree_tui.client.image_files import ImageFiles, parent_dir
from contree_tui.tui.snapshot_files import ClientSnapshotFiles
from tests.tui.frozen import BASE, SNAPSHOTS, uid

T = TypeVar("T")

DIR, FILE, EXEC, LINK, STICKY = 0o40755, 0o100644, 0o100755, 0o120777, 0o41777
CHUNK = 64 * 1024  # the stream's chunk size: read_head must stop mid-stream on a long file
BUILT = int(datetime(2024, 9, 26, 21, 31, 42, tzinfo=UTC).timestamp())  # when busybox:latest was built


def made(uuid: str) -> int:
    """The mtime of a file a run wrote: the second its snapshot was taken."""
    created = next(s.created_at for s in SNAPSHOTS if s.uuid == uuid)
    assert created is not None
    return int(created.timestamp())


@dataclass(frozen=True)
class Node:
    mode: int
    mtime: int = BUILT
    data: bytes = b""  # a regular file's contents
    target: str = ""  # a symlink's

    @property
    def is_dir(self) -> bool:
        return self.mode & 0o170000 == 0o040000

    @property
    def is_regular(self) -> bool:
        return self.mode & 0o170000 == 0o100000

    @property
    def is_symlink(self) -> bool:
        return self.mode & 0o170000 == 0o120000

    @property
    def size(self) -> int:
        return 4096 if self.is_dir else len(self.target) if self.is_symlink else len(self.data)


def text(body: str, mtime: int = BUILT, mode: int = FILE) -> Node:
    return Node(mode, mtime, body.encode())


Tree = dict[str, Node]

ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x03\x00\x3e\x00" + bytes(1100)  # binary: NULs in its head

BUSYBOX: Tree = {
    "/": Node(DIR), "/bin": Node(DIR), "/bin/busybox": Node(EXEC, data=ELF),
    **{f"/bin/{tool}": Node(LINK, target="busybox") for tool in ("cat", "ls", "make", "sh", "wget")},
    "/etc": Node(DIR), "/etc/group": text("root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"),
    "/etc/hostname": text("sandbox\n"), "/etc/passwd": text(
        "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
        "nobody:x:65534:65534:nobody:/home:/bin/false\n"),
    "/home": Node(DIR), "/root": Node(0o40700), "/tmp": Node(STICKY), "/usr": Node(DIR), "/var": Node(DIR),
    "/var/spool": Node(DIR), "/var/www": Node(DIR),
}

MAKEFILE = "all:\n\techo built\n\ntest:\n\t./run-tests\n"


def _images() -> dict[str, Tree]:
    first = {**BUSYBOX, "/etc/motd": text("welcome to the sandbox\n", made(uid(1)))}
    app = {**first, "/app": Node(DIR, made(uid(2))), "/app/Makefile": text(MAKEFILE, made(uid(2))),
           "/app/NOTES": text("todo: a test target\nthen: ship it\n", made(uid(2)))}
    branch = {**first, "/branch": text("experiment\n", made(uid(4)))}
    # the working snapshot: a build directory added, NOTES removed, /etc/motd grown, and the Makefile rewritten
    # within the second its parent was taken (same size, same mtime: only a content check sees it)
    working = {k: v for k, v in app.items() if k != "/app/NOTES"}
    working |= {
        "/app/Makefile": text(MAKEFILE.replace("run-tests", "run-specs"), made(uid(2))),
        "/app/build": Node(DIR, made(uid(5))),
        "/app/build/app": Node(EXEC, made(uid(5)), ELF),
        "/app/build/app.log": text("echo built\nbuilt\n", made(uid(5))),
        "/etc/motd": text("welcome to the sandbox\nbuild ok\n", made(uid(5))),
    }
    return {BASE: BUSYBOX, uid(1): first, uid(2): app, uid(3): app, uid(4): branch,
            uid(8): {**branch, "/branch": text("deeper\n", made(uid(8)))}, uid(5): working}


class FrozenInspectClient:
    """The official async client's inspect calls, answered from fixed trees, with its models and its errors."""

    def __init__(self, images: dict[str, Tree] | None = None) -> None:
        self.images = images if images is not None else _images()

    def _node(self, image: str, path: str) -> Node:
        tree = self.images.get(image)
        if tree is None:
            raise APIStatusError(404, f"image {image} not found")
        node = tree.get(path)
        if node is None:
            raise APIStatusError(404, f"{path}: no such file or directory")
        return node

    async def inspect_image_list(self, image_uuid: str, path: str) -> DirectoryList:
        if not self._node(image_uuid, path).is_dir:
            raise APIStatusError(422, f"{path} is not a directory")
        tree = self.images[image_uuid]
        items = [self._item(name, tree[name]) for name in tree if name != "/" and parent_dir(name) == path]
        return DirectoryList(path=path, files=items)  # in no particular order, like the server's

    @staticmethod
    def _item(path: str, node: Node) -> FileItem:
        return FileItem(size=node.size, path=path.rsplit("/", 1)[-1], owner="root", group="root", uid=0, gid=0,
                        mode=node.mode, mtime=node.mtime, nlink=2 if node.is_dir else 1, is_dir=node.is_dir,
                        is_regular=node.is_regular, is_symlink=node.is_symlink, is_socket=False, is_fifo=False,
                        symlink_to=node.target)

    async def inspect_image_download_stream(self, image_uuid: str, path: str) -> AsyncGenerator[bytes, None]:
        node = self._node(image_uuid, path)
        if not node.is_regular:
            raise APIStatusError(422, f"{path} is not a regular file")
        for start in range(0, len(node.data), CHUNK):
            yield node.data[start:start + CHUNK]

    async def inspect_image_grep(self, image_uuid: str, pattern: str, *, path: str = "/",
                                 max_total: int = 500, case: str = "smart", **_: Any) -> GrepResult:
        self._node(image_uuid, path)
        insensitive = case == "insensitive" or (case == "smart" and pattern == pattern.lower())
        try:
            regex = re.compile(pattern, re.IGNORECASE if insensitive else 0)
        except re.error as exc:
            raise APIStatusError(400, f"invalid regex {pattern!r}: {exc}") from exc
        matches: list[GrepMatch] = []
        under = path.rstrip("/") + "/"
        for name, node in sorted(self.images[image_uuid].items()):
            if not node.is_regular or b"\0" in node.data or not (name == path or name.startswith(under)):
                continue
            offset = 0
            for number, line in enumerate(node.data.decode().splitlines(keepends=True), start=1):
                found = [GrepSubmatch(text=m.group(), start=m.start(), end=m.end())
                         for m in regex.finditer(line.rstrip("\n"))]
                if found:
                    if len(matches) == max_total:
                        return GrepResult(path=path, patterns=[pattern], matches=matches, truncated=True)
                    matches.append(GrepMatch(path=name, line_number=number, absolute_offset=offset, line_text=line,
                                             line_bytes=len(line.encode()), submatches=found, type="match"))
                offset += len(line.encode())
        return GrepResult(path=path, patterns=[pattern], matches=matches, truncated=False)


    async def call(self, spec: RequestSpec) -> ResponseData:
        """The raw inspect JSON the detail view asks for its sizes: the spec's Image, no extension (as a
        hosted Contree answers), so the header shows no size."""
        uuid = spec.path.strip("/").split("/")[1]
        body = {"uuid": uuid, "tag": None, "created_at": None, "operation_uuid": None}
        return ResponseData(200, {"content-type": "application/json"}, json.dumps(body).encode())


class FrozenConnection:
    """What ImageFiles needs of a Connection: the client, and `call` (no retries: nothing here fails by chance)."""

    def __init__(self, client: FrozenInspectClient) -> None:
        self.client = client

    async def call(self, fn: Callable[[], Awaitable[T]], *, idempotent: bool = True) -> T:
        return await fn()


def frozen_files() -> ClientSnapshotFiles:
    return ClientSnapshotFiles(ImageFiles(FrozenConnection(FrozenInspectClient())))  # type: ignore[arg-type]

