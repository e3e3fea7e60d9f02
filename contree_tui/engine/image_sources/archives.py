"""Offline image sources: `docker-archive:PATH[:NAME:TAG|:@N]` (what `docker save` and `skopeo copy ...
docker-archive:` write) and `oci-archive:PATH[:REF|:@N]` (an OCI image layout in a tar), with skopeo's syntax.

The archive is opened once (O_NONBLOCK, and it must be a regular file: a FIFO at the path would block the
reader forever), its tar structure is read by a confined helper (tar_members.py), and from then on the
engine reads byte ranges of that one fd: small JSON members, size-capped, parsed here; layers copied into the
import's files while hashed, in chunks run in a thread (the event loop never waits on the disk for more than
one chunk's worth of the caller's time, and a cancelled import stops between chunks). A path that is a
symlink is followed, as for `rootfs:` and as skopeo does: the path comes from the engine's own client.

docker-archive, as written by the tools (checked against skopeo 1.x and Docker 25+):
- manifest.json: [{"Config": NAME, "RepoTags": ["docker.io/foo/bar:t1"], "Layers": [NAME, ...]}, ...]
- skopeo: layers uncompressed as `<diff id hex>.tar` (plus `<v1 id>/layer.tar` symlinks), config
  `<config digest hex>.json`; docker save before 25: `<v1 id>/layer.tar`, uncompressed; Docker 25+: an OCI
  layout (blobs/sha256/<hex>, possibly gzip layers) plus that manifest.json.
An uncompressed layer's digest IS its diff id, so that is what its copy is verified against: a config that
lies about a diff id cannot get other content stored under it. A compressed layer is verified against the
digest its content-addressed name gives, or hashed once here when it has none.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from contree_tui.engine.image_sources.base import LayerBlob, Progress, ResolvedImage
from contree_tui.engine.image_sources.blob_copy import copy_range
from contree_tui.engine.image_sources.oci_index import (
    MAX_CONFIG_BYTES,
    MAX_INDEX_BYTES,
    MAX_LAYERS,
    blob_digest,
    check_digest,
    diff_ids_of,
    parse_json_object,
    resolve_layout,
    resolved,
    validate_ref,
)
from contree_tui.engine.image_sources.tar_members import Member, TarIndexer, TarMembers, compression_of, member_key
from contree_tui.engine.models import EngineError, NotFound, Unprocessable
from contree_tui.engine.registry.reference import parse_reference

OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
MAX_MANIFEST_JSON = 4 << 20  # docker-archive's manifest.json: one small entry per image
MEDIA_TYPES = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
               "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
               None: "application/vnd.oci.image.layer.v1.tar"}
_CONTENT_NAME = re.compile(r"^(?:blobs/sha256/([0-9a-f]{64})|([0-9a-f]{64})\.(?:tar|json))$")


def split_path(value: str, scheme: str) -> tuple[str, str | None]:
    """PATH[:REST] split at the first `:`, as skopeo splits it (a path holding `:` cannot be named)."""
    path, colon, rest = value.partition(":")
    if not path or "\0" in value:
        raise EngineError(f"{scheme}{value[:200]}: no archive path (expected {scheme}/PATH)")
    if not path.startswith("/"):  # the engine is a daemon: its working directory is not the client's
        raise EngineError(f"{scheme}{path[:200]}: the archive's path must be absolute")
    return path, (rest if colon else None)


class _Archive:
    """One archive file: its fd, its size and its members, read through the confined indexer."""

    def __init__(self, path: str, where: str) -> None:
        self.path, self.where = path, where
        self.fd = -1
        self.size = 0
        self.members = TarMembers({}, {}, where)

    async def open(self, indexer: TarIndexer | None, timeout: float) -> None:
        if self.fd >= 0:  # resolved before
            return
        if indexer is None:
            raise EngineError(f"{self.where}: archive sources need the engine's confined readers "
                              "(open_source(..., indexer=...))", status=500)
        try:
            fd = os.open(self.path, OPEN_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"{self.where}: no such file") from None
        except OSError as exc:
            raise Unprocessable(f"{self.where}: cannot open ({exc.strerror})") from None
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise Unprocessable(f"{self.where}: is a directory (an OCI layout directory is `oci:DIR`)")
            if not stat.S_ISREG(st.st_mode):
                raise Unprocessable(f"{self.where}: not a regular file (a FIFO or device cannot be imported)")
            head = os.pread(fd, 8, 0)
            if (kind := compression_of(head)) is not None:
                raise Unprocessable(f"{self.where}: the archive is {kind}-compressed; decompress it first "
                                    f"(members are read in place, which needs a plain tar)")
            self.members = await indexer.index(fd, st, self.where, timeout)
        except BaseException:
            os.close(fd)
            raise
        self.fd, self.size = fd, st.st_size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def member(self, name: str, what: str) -> Member:
        found = self.members.find(name)
        if found is None:
            raise Unprocessable(f"{self.where}: {what} {name[:200]!r} is not in the archive")
        return found

    async def read(self, member: Member, cap: int, what: str) -> bytes:
        """A small member's bytes (Unprocessable past `cap`)."""
        if member.size > cap:
            raise Unprocessable(f"{self.where}: {what} is {member.size} bytes; at most {cap} are accepted")
        data = await asyncio.to_thread(os.pread, self.fd, member.size, member.offset)
        if len(data) != member.size:
            raise Unprocessable(f"{self.where}: the archive changed or was cut while it was read")
        return data

    async def head(self, member: Member) -> bytes:
        return await asyncio.to_thread(os.pread, self.fd, min(member.size, 8), member.offset)

    async def copy(self, member: Member, dest: Path | None, algorithm: str, progress: Progress | None) -> str:
        """Copy the member into the new file `dest` (or only hash it); its digest."""
        return await copy_range(self.fd, member.offset, member.size, dest, algorithm, progress, self.where)


class _ArchiveSource:
    scheme = ""

    def __init__(self, path_and_ref: str, *, indexer: TarIndexer | None = None, timeout: float = 300.0) -> None:
        self.path, self.ref = split_path(path_and_ref, self.scheme)
        self.where = f"{self.scheme}{self.path}"
        self._indexer, self._timeout = indexer, timeout
        self._archive = _Archive(self.path, self.where)
        self._blobs: dict[str, Member] = {}  # digest -> where its bytes are, filled by resolve

    async def resolve(self) -> ResolvedImage:
        raise NotImplementedError

    async def fetch_blob(self, blob: LayerBlob, dest: Path, progress: Progress) -> None:
        member = self._blobs.get(blob.digest)
        if member is None:
            raise EngineError(f"{self.where}: blob {blob.digest} is not part of the resolved image", status=500)
        digest = await self._archive.copy(member, dest, blob.digest.split(":", 1)[0], progress)
        if digest != blob.digest:
            raise Unprocessable(f"{self.where}: layer {blob.digest} does not match its digest (it hashes to "
                                f"{digest}): the archive is damaged or altered")

    async def aclose(self) -> None:
        self._archive.close()

    def _reference(self) -> str:
        return self.where + (f":{self.ref}" if self.ref is not None else "")


class OciArchiveSource(_ArchiveSource):
    """`oci-archive:PATH[:REF]`: an OCI image layout (oci-layout, index.json, blobs/<alg>/<hex>) in a tar."""

    scheme = "oci-archive:"

    def __init__(self, path_and_ref: str, *, indexer: TarIndexer | None = None, timeout: float = 300.0) -> None:
        super().__init__(path_and_ref, indexer=indexer, timeout=timeout)
        if self.ref is not None:
            self.ref = validate_ref(self.ref, self.where)

    async def resolve(self) -> ResolvedImage:
        archive = self._archive
        await archive.open(self._indexer, self._timeout)
        if "index.json" not in archive.members:
            hint = (" (a `docker save` of Docker before 25? use docker-archive:)"
                    if "manifest.json" in archive.members else "")
            raise Unprocessable(f"{self.where}: no index.json: not an OCI image layout{hint}")
        index_json = await archive.read(archive.member("index.json", "index.json"), MAX_INDEX_BYTES, "index.json")

        async def read_blob(digest: str, cap: int) -> bytes:
            return await archive.read(self._blob_member(digest), cap, f"blob {digest}")

        image = await resolve_layout(index_json, self.ref, read_blob, self.where)
        for layer in image.layers:
            member = self._blob_member(layer.digest)
            if member.size != layer.size:
                raise Unprocessable(f"{self.where}: layer {layer.digest} is {member.size} bytes in the archive; "
                                    f"its manifest says {layer.size}")
            self._blobs[layer.digest] = member
        return resolved(image, self._reference())

    def _blob_member(self, digest: str) -> Member:
        algorithm, _, hex_ = check_digest(digest, self.where).partition(":")
        found = self._archive.members.find(f"blobs/{algorithm}/{hex_}")
        if found is None:
            raise NotFound(f"{self.where}: blob {digest} is not in the archive (an incomplete layout)")
        return found


_INDEX_REF = re.compile(r"^@(\d{1,6})$")


def normalize_name(reference: str) -> str | None:
    """`busybox` → `docker.io/library/busybox:latest` (docker's normalisation, registry/reference.py), so
    that a RepoTag as `docker save` writes it and as skopeo writes it compare equal; None if malformed."""
    try:
        parsed = parse_reference(reference)
    except EngineError:
        return None
    return None if parsed.digest else f"{parsed.registry}/{parsed.repository}:{parsed.tag}"


class DockerArchiveSource(_ArchiveSource):
    """`docker-archive:PATH[:NAME:TAG|:@N]`: manifest.json's image that NAME:TAG is a RepoTag of, its N-th
    (0-based), or its only one."""

    scheme = "docker-archive:"

    def __init__(self, path_and_ref: str, *, indexer: TarIndexer | None = None, timeout: float = 300.0) -> None:
        super().__init__(path_and_ref, indexer=indexer, timeout=timeout)
        self._name: str | None = None
        if self.ref is not None and not _INDEX_REF.match(self.ref):
            if "@" in self.ref:
                raise EngineError(f"{self.where}: {self.ref[:200]!r}: docker-archive references are NAME:TAG or "
                                  "@N; a digest cannot name an image in it")
            self._name = normalize_name(self.ref)
            if self._name is None:
                raise EngineError(f"{self.where}: {self.ref[:200]!r} is not a valid image name (NAME:TAG or @N)")

    async def resolve(self) -> ResolvedImage:
        archive = self._archive
        await archive.open(self._indexer, self._timeout)
        if "manifest.json" not in archive.members:
            hint = " (an OCI layout? use oci-archive:)" if "index.json" in archive.members else ""
            raise Unprocessable(f"{self.where}: no manifest.json: not a docker save archive{hint}")
        entries = await archive.read(archive.member("manifest.json", "manifest.json"), MAX_MANIFEST_JSON,
                                     "manifest.json")
        entry = self._select(_manifest_entries(entries, self.where))
        config_name = entry.get("Config")
        layer_names = entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layer_names, list) \
                or not all(isinstance(n, str) for n in layer_names):
            raise Unprocessable(f"{self.where}: manifest.json's entry has no Config or Layers")
        if len(layer_names) > MAX_LAYERS:
            raise Unprocessable(f"{self.where}: {len(layer_names)} layers; at most {MAX_LAYERS} can be mounted")
        config_bytes = await archive.read(archive.member(config_name, "the config"), MAX_CONFIG_BYTES,
                                          "the image config")
        config_digest = blob_digest(config_bytes)
        named = _content_digest(config_name)
        if named is not None and named != config_digest:
            raise Unprocessable(f"{self.where}: the config {config_name[:200]!r} does not match the digest in "
                                "its name (damaged or altered)")
        config = parse_json_object(config_bytes, f"{self.where}: the image config")
        diff_ids = diff_ids_of(config, len(layer_names), self.where)
        layers = []
        for n, (name, diff_id) in enumerate(zip(layer_names, diff_ids, strict=True)):
            member = archive.member(name, f"layer {n}")
            compression = compression_of(await archive.head(member))
            if compression is None:
                digest = diff_id  # an uncompressed layer's digest is its diff id: verified on copy
            elif (named := _content_digest(name)) is not None:
                digest = named
            else:  # a compressed layer with no digest anywhere: hash it once (rare: no tool writes that)
                digest = await archive.copy(member, None, "sha256", None)
            layers.append(LayerBlob(digest, member.size, MEDIA_TYPES.get(compression, ""), diff_id))
            self._blobs[digest] = member
        tags = entry.get("RepoTags")
        return ResolvedImage(self._reference(), config_digest, config, tuple(layers), "",
                             {"config_digest": config_digest,
                              "repo_tags": [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []})

    def _select(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        tags = [[t for t in e.get("RepoTags") or [] if isinstance(t, str)] for e in entries]
        listing = "; ".join(f"@{n}: {', '.join(t[:100] for t in ts[:5]) or 'untagged'}"
                            for n, ts in enumerate(tags[:20]))
        if self.ref is None:
            if len(entries) == 1:
                return entries[0]
            raise EngineError(f"{self.where}: the archive holds {len(entries)} images; name one by appending "
                              f":NAME:TAG or :@N to the reference ({listing})")
        if (match := _INDEX_REF.match(self.ref)) is not None:
            number = int(match.group(1))
            if number >= len(entries):
                raise NotFound(f"{self.where}: no image @{number}: the archive holds {len(entries)} ({listing})")
            return entries[number]
        for entry, entry_tags in zip(entries, tags, strict=True):
            if any(normalize_name(t) == self._name for t in entry_tags):
                return entry
        raise NotFound(f"{self.where}: no image tagged {self.ref[:200]!r} in the archive ({listing})")


def _manifest_entries(data: bytes, where: str) -> list[dict[str, Any]]:
    try:
        entries = json.loads(data)
    except (ValueError, RecursionError):
        raise Unprocessable(f"{where}: manifest.json is not valid JSON") from None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise Unprocessable(f"{where}: manifest.json does not list images")
    return entries


def _content_digest(name: str) -> str | None:
    """The digest a content-addressed member name states (`blobs/sha256/<hex>`, `<hex>.tar`, `<hex>.json`)."""
    match = _CONTENT_NAME.match(member_key(name))
    if match is None:
        return None
    return f"sha256:{match.group(1) or match.group(2)}"
