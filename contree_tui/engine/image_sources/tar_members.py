"""Where each file of an image archive (a plain tar: `docker save`, `skopeo copy ... docker-archive:` or
`oci-archive:`) lies in it, found by a confined helper; the engine then reads those byte ranges itself.

The archive is image content, so hostile: its tar headers (names, sizes, PAX records, GNU long names, sparse
maps) are parsed by tarfile in a read-only helper (sandbox/helper.py: pid 1 of its own namespaces, an empty
read-only tmpfs as its root, no capability, no imports, a deadline), reading the archive from an fd the engine opened.
It answers an index {member name: (data offset, size)} of the regular files and {name: target} of the
symbolic and hard links. The engine checks the index against the file's size (a forged or buggy index can
only point at bytes of the same file) and then `pread`s small JSON members (size-capped) and copies layer
byte ranges, whose digests the caller verifies: no tar structure is ever parsed with host privilege.

Member names are only keys: `../x` or `/etc/passwd` inside an archive names a member, never a host path.
"""

from __future__ import annotations

import json
import os
import posixpath
import tarfile
import zlib  # noqa: F401 - tarfile imports it lazily on some errors; a helper refuses imports, so load it here
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from contree_tui.engine.models import EngineError, Unprocessable
from contree_tui.engine.sandbox.helper import INPUT_FD, HelperFailed, HelperLimits, HelperOutput, HelperSet

MAX_MEMBERS = 100_000  # a docker save of 100 images with 50 layers each holds ~10k; tarfile keeps ~1 KiB each
MAX_NAME_CHARS = 4096  # PATH_MAX: longer names are no archive a real tool wrote
MAX_INDEX_BYTES = 32 << 20  # the helper's answer: 100k members x (name + two numbers)
INDEX_MEMORY = 256 << 20
INDEX_IDLE = 30.0
LINK_HOPS = 16
BLOCK = 512

# Magic numbers of compressed streams: a compressed archive has no byte offsets to read members at.
COMPRESSIONS = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd", b"\xfd7zXZ\x00": "xz", b"BZh": "bzip2"}


def compression_of(head: bytes) -> str | None:
    for magic, name in COMPRESSIONS.items():
        if head.startswith(magic):
            return name
    return None


def member_key(name: str) -> str:
    """The form names are compared in: no leading `/` or `./`, no `//`, `.` or `dir/..` steps. Still a key:
    it is never joined to a host path."""
    key = posixpath.normpath("/" + name).lstrip("/")
    return key if key != "." else ""


@dataclass(frozen=True)
class Member:
    name: str
    offset: int  # of its data, from the start of the archive
    size: int


class TarMembers:
    """An archive's index, checked: every regular file's bytes lie inside the file."""

    def __init__(self, files: dict[str, Member], links: dict[str, str], where: str) -> None:
        self.files, self.links, self.where = files, links, where

    def find(self, name: str) -> Member | None:
        """The regular file `name` names, through links inside the archive (skopeo follows them too: a
        `docker save` of old stores links duplicate layers), or None."""
        key = member_key(name)
        for _ in range(LINK_HOPS):
            if key in self.files:
                return self.files[key]
            if key not in self.links:
                return None
            key = self.links[key]
        return None

    def __contains__(self, name: str) -> bool:
        return self.find(name) is not None


def parse_index(payload: bytes, file_size: int, where: str) -> TarMembers:
    """The helper's answer, checked as hostile: an entry out of the file's bounds is refused (not clipped)."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        raise HelperFailed(f"{where}: the archive reader sent a malformed index") from None
    files_in, links_in = (data.get("files"), data.get("links")) if isinstance(data, dict) else (None, None)
    if not isinstance(files_in, dict) or not isinstance(links_in, dict) or len(files_in) + len(links_in) > MAX_MEMBERS:
        raise HelperFailed(f"{where}: the archive reader sent a malformed index")
    files: dict[str, Member] = {}
    for name, entry in files_in.items():
        if not (isinstance(entry, list) and len(entry) == 2 and all(type(v) is int for v in entry)):
            raise HelperFailed(f"{where}: the archive reader sent a malformed index")
        offset, size = entry
        if offset < 0 or size < 0 or offset + size > file_size:
            raise Unprocessable(f"{where}: member {name[:200]!r} claims bytes {offset}..{offset + size} but the "
                                f"file has {file_size} (a truncated or damaged archive)")
        files[member_key(name)] = Member(name, offset, size)
    links = {member_key(name): member_key(target) for name, target in links_in.items() if isinstance(target, str)}
    return TarMembers(files, links, where)


class TarIndexer:
    """What an archive source needs to have an archive's structure read in confinement: the engine's inspect
    helpers and a directory to mount their empty root on (the engine's inspect root: each helper mounts
    there in a mount namespace of its own).

    The last CACHED indexes are kept by the file's identity and change times: importing the same archive
    again (the usual way to get its image back: its digest is only known once it is read) costs no helper
    (a fork, namespaces and a tar walk: 15-35 ms measured). Any write to the file changes its ctime, which
    no unprivileged process can set back; and a stale index could only point at bytes of the same file,
    whose digests are checked as always."""

    CACHED = 16
    CACHED_MEMBERS = 10_000  # larger indexes (hundreds of images in one archive) are read again

    def __init__(self, helpers: HelperSet, mountpoint: str) -> None:
        self.helpers, self.mountpoint = helpers, mountpoint
        self._cache: OrderedDict[tuple[int, ...], TarMembers] = OrderedDict()

    async def index(self, fd: int, st: os.stat_result, where: str, timeout: float) -> TarMembers:
        """The members of the plain tar open on `fd` (a regular file, `st` its fstat), or Unprocessable."""
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if (cached := self._cache.get(key)) is not None:
            self._cache.move_to_end(key)
            return TarMembers(cached.files, cached.links, where)
        lifetime = max(5.0, min(timeout, 300.0))
        limits = HelperLimits(cpu_seconds=int(lifetime) + 1, memory_bytes=INDEX_MEMORY, open_files=16,
                              lifetime=lifetime)
        helper = await self.helpers.start_reading(self.mountpoint, _index_members, limits, input_fd=fd)
        try:
            await helper.header(lifetime + 5)
            payload = await helper.read_all(MAX_INDEX_BYTES, INDEX_IDLE)
        except EngineError as exc:  # the helper's answer (why this is no readable tar), its timeout or failure
            raise type(exc)(f"{where}: {exc}", exc.status) from None
        finally:
            helper.close()
        members = parse_index(payload, st.st_size, where)
        if len(members.files) + len(members.links) <= self.CACHED_MEMBERS:
            self._cache[key] = members
            while len(self._cache) > self.CACHED:
                self._cache.popitem(last=False)
        return members


# -- the helper's side ----------------------------------------------------------------------------------

def _index_members(out: HelperOutput) -> None:  # pragma: no cover - runs in the helper
    """In the helper: walk the tar on INPUT_FD header by header (tarfile seeks over the data, so a 2 GB
    archive costs a few thousand 512-byte reads) and answer its regular files and links."""
    size = os.fstat(INPUT_FD).st_size
    source = os.fdopen(INPUT_FD, "rb", buffering=BLOCK * 20)
    files: dict[str, list[int]] = {}
    links: dict[str, str] = {}
    count = 0
    try:
        archive = tarfile.open(fileobj=source, mode="r:")  # noqa: SIM115 - the helper exits after this
        for member in archive:
            count += 1
            if count > MAX_MEMBERS:
                raise Unprocessable(f"more than {MAX_MEMBERS} members: not an image archive")
            if len(member.name) > MAX_NAME_CHARS or "\0" in member.name:
                raise Unprocessable("a member name is longer than 4096 characters: not an image archive")
            name = member_key(member.name)  # a later `./x` replaces an earlier `x`, as on extraction
            files.pop(name, None)  # re-inserted below: the dict's order is the archive's
            links.pop(name, None)
            if member.isreg() and not member.issparse():
                if member.offset_data + member.size > size:
                    raise Unprocessable(f"the archive is truncated: member {name[:200]!r} needs "
                                        f"{member.offset_data + member.size} bytes, the file has {size}")
                files[name] = [member.offset_data, member.size]
            elif member.issym() or member.islnk():
                target = member.linkname
                if member.issym():  # relative to the link's directory; absolute = from the archive's root
                    target = posixpath.join(posixpath.dirname("/" + name), target)
                links[name] = target
            # else directories, devices, FIFOs, sparse files: nothing a source reads
        end = archive.offset
    except tarfile.ReadError as exc:
        if "unexpected end of data" in str(exc):
            raise Unprocessable(f"the archive is truncated: a member's data runs past the end of the file "
                                f"({size} bytes)") from None
        raise Unprocessable(f"not a tar archive ({exc})") from None
    except (tarfile.TarError, EOFError, ValueError, OverflowError) as exc:
        raise Unprocessable(f"not a readable tar archive ({exc})") from None
    _check_end(source, end, size, count)
    body = json.dumps({"files": files, "links": links}, separators=(",", ":")).encode()
    out.header(members=count, size=len(body))
    out.write(body)


def _check_end(source: Any, end: int, size: int, count: int) -> None:  # pragma: no cover - in the helper
    """tarfile stops quietly at a cut or garbled header after the first member; a complete archive ends at
    the file's end or with a zero block (the end-of-archive marker)."""
    if end >= size:
        return
    source.seek(end)
    block = source.read(BLOCK)
    if len(block) < BLOCK:
        raise Unprocessable(f"the archive is truncated: a header is cut at byte {end} of {size}")
    if block.strip(b"\0"):
        raise Unprocessable(f"the archive is damaged: no valid tar header at byte {end} (after {count} members)")
