"""Export a snapshot as an image Docker, Podman and skopeo load: `contree-tui export IMAGE --format F OUT`.

Built from the official API only, so it works against any Contree: GET /v1/inspect/{uuid}/archive?path=/ is
a POSIX PAX tar of the image's whole root filesystem (every layer of its chain merged: owners, modes,
symlinks, hard links, FIFOs and devices as header-only members; deleted files are simply absent). That tar
becomes the single layer of the exported image, unchanged byte for byte, so nothing in it is parsed here.
The embedded engine's tar also holds the empty mountpoint dirs /proc, /dev and /sys (its scaffold layer);
Docker's own images carry the same empty dirs, so they stay.

- oci-archive: a tar of an OCI image layout (oci-layout, index.json, blobs/sha256/...), the layer gzipped
  (what `docker load`, `podman load` and `skopeo copy oci-archive:` expect). From a hosted Contree the
  archive comes gzip-encoded and those bytes are the layer blob as they come (only decompressed to hash the
  diff id); from the embedded engine it comes plain and is compressed here (see _stream_archive).
- docker-archive: what `docker save` writes (manifest.json, repositories, <id>.json, <id>/layer.tar),
  the layer uncompressed, as docker save's is.

The layer streams to disk with its digests computed on the way (never held in memory). The archive's outer
tar is written in one pass: a header slot is reserved before the layer and filled in once its size and
digest are known (export_archive.py). Everything goes to a temp file beside OUT, renamed into place when
complete: a failure or Ctrl-C leaves no file behind.

The image config: the API's Image has no env, workdir or user. The embedded engine adds them (the
`x_engine` extension of GET /v1/inspect/{uuid}/); from another Contree the config gets Docker's default
PATH only.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import tempfile
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from contree_client import operations
from contree_client.exceptions import APIConnectionError, APIStatusError, NotFoundError

from contree_tui.client.connection import Connection
from contree_tui.client.export_archive import ExportError, LayerSink, OuterTar, json_bytes, sha256_digest
from contree_tui.client.image_details import image_details

ExportFormat = Literal["oci-archive", "docker-archive"]
FORMATS: tuple[ExportFormat, ...] = ("oci-archive", "docker-archive")
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Docker reference grammar (distribution/reference), lower-case path components and an optional
# host[:port] first; a tag of at most 128 word characters, dots and dashes.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^\w[\w.-]{0,127}$")
MEDIA = {
    "index": "application/vnd.oci.image.index.v1+json",
    "manifest": "application/vnd.oci.image.manifest.v1+json",
    "config": "application/vnd.oci.image.config.v1+json",
    "layer": "application/vnd.oci.image.layer.v1.tar+gzip",
}


@dataclass(frozen=True)
class ImageInfo:
    """What the config is made of: from the inspect JSON, its `x_engine` extension when there is one."""

    uuid: str
    created: str  # ISO 8601
    env: tuple[str, ...] = (DEFAULT_PATH,)
    workdir: str = ""
    user: str = ""
    total_size: int | None = None  # du bytes of the whole chain (a progress estimate), when the server says
    from_extension: bool = False


@dataclass
class ExportResult:
    path: Path
    format: ExportFormat
    name: str
    layer_digest: str  # of the blob as stored (gzip for oci-archive)
    diff_id: str  # of the uncompressed tar
    layer_bytes: int  # as stored
    tar_bytes: int  # uncompressed
    archive_bytes: int
    config_from_engine: bool = False
    notes: list[str] = field(default_factory=list)


# -- names ----------------------------------------------------------------------------------------------

def split_name(name: str) -> tuple[str, str]:
    """`repo[:tag]` → (repo, tag), tag defaulting to `latest`; ExportError if Docker would refuse it."""
    slash = name.rfind("/")
    colon = name.rfind(":")
    repo, tag = (name[:colon], name[colon + 1:]) if colon > slash else (name, "latest")
    if not _NAME.match(repo) or not _TAG.match(tag):
        raise ExportError(f"--name {name!r} is not a Docker image name (lower-case repository[:tag], e.g. "
                          "myapp:1.0 or registry.local:5000/team/app:dev)")
    return repo, tag


def default_name(uuid: str, tags: tuple[str, ...] | list[str]) -> str:
    """The image's first tag that is a valid Docker name, else `contree/<first 12 of its uuid>:latest`."""
    for tag in tags:
        try:
            repo, version = split_name(tag)
        except ExportError:
            continue
        return f"{repo}:{version}"
    return f"contree/{uuid.replace('-', '')[:12]}:latest"


# -- the image's metadata --------------------------------------------------------------------------------

async def image_info(connection: Connection, uuid: str) -> ImageInfo:
    details = await image_details(connection, uuid)
    created = _iso(details.created_at)
    if not details.extended:
        return ImageInfo(uuid=uuid, created=created)
    env = tuple(f"{k}={v}" for k, v in details.env.items()) or (DEFAULT_PATH,)
    return ImageInfo(uuid=uuid, created=created, env=env, workdir=details.workdir or "", user=details.user or "",
                     total_size=details.total_size or None, from_extension=True)


def _iso(value: str | None) -> str:
    if value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
        except ValueError:
            pass
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def host_architecture() -> str:
    """GOARCH of this machine (images run where they were made; a hosted Contree runs amd64)."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)


def image_config(info: ImageInfo, diff_id: str) -> dict[str, Any]:
    config: dict[str, Any] = {"Env": list(info.env), "Cmd": ["/bin/sh"]}
    if info.workdir:
        config["WorkingDir"] = info.workdir
    if info.user:
        config["User"] = info.user
    return {
        "created": info.created, "architecture": host_architecture(), "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": info.created, "created_by": f"contree-tui export of image {info.uuid}"}],
    }


# -- export ---------------------------------------------------------------------------------------------

Progress = Callable[[int, int | None], None]  # (tar bytes so far, estimated total or None)


async def export_image(connection: Connection, uuid: str, fmt: ExportFormat, out: str | Path, *, name: str,
                       progress: Progress | None = None) -> ExportResult:
    """Write image `uuid` to `out` as `fmt`, named `name` (repo[:tag]). Raises ExportError (nothing left
    behind) for what a user can fix or should know; API errors pass through."""
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")
    repo, tag = split_name(name)
    target = Path(out).expanduser()
    if target.is_dir():
        raise ExportError(f"{target} is a directory; give the archive's file name (e.g. {target}/image.tar)")
    if not target.parent.is_dir():
        raise ExportError(f"{target.parent} does not exist")
    info = await image_info(connection, uuid)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    except OSError as exc:
        raise ExportError(f"cannot write in {target.parent}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w+b", buffering=1 << 20) as handle:
            result = await _write(connection, info, fmt, handle, f"{repo}:{tag}", progress)
            handle.flush()
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(handle.fileno(), 0o666 & ~umask)  # as a file the user writes (mkstemp's is 0600)
            os.fsync(handle.fileno())
            size = handle.tell()
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    result.path, result.archive_bytes = target, size
    if not info.from_extension:
        result.notes.append("this Contree does not say the image's env or workdir: the config has Docker's "
                            "default PATH only")
    return result


async def _write(connection: Connection, info: ImageInfo, fmt: ExportFormat, handle: IO[bytes], name: str,
                 progress: Progress | None) -> ExportResult:
    mtime = int(datetime.fromisoformat(info.created.replace("Z", "+00:00")).timestamp())
    tar = OuterTar(handle, mtime)
    oci = fmt == "oci-archive"
    if oci:
        tar.file("oci-layout", json_bytes({"imageLayoutVersion": "1.0.0"}))
        tar.directory("blobs/")
        tar.directory("blobs/sha256/")
    slot = tar.reserve()
    sink = LayerSink(handle, gzip=oci)
    await _stream_archive(connection, info, sink, progress)
    sink.finish()
    diff_hex = sink.diff_id.split(":", 1)[1]
    blob_name = f"blobs/sha256/{sink.blob_hash.hexdigest()}" if oci else f"{diff_hex}/layer.tar"
    tar.fill(slot, blob_name, sink.blob_bytes)
    config = json_bytes(image_config(info, sink.diff_id))
    config_digest = sha256_digest(config)
    repo, tag = name.rsplit(":", 1)
    if oci:
        tar.file(f"blobs/sha256/{config_digest.split(':', 1)[1]}", config)
        manifest = json_bytes({
            "schemaVersion": 2, "mediaType": MEDIA["manifest"],
            "config": {"mediaType": MEDIA["config"], "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": MEDIA["layer"], "digest": sink.blob_digest, "size": sink.blob_bytes}],
            "annotations": {"org.opencontainers.image.created": info.created}})
        manifest_digest = sha256_digest(manifest)
        tar.file(f"blobs/sha256/{manifest_digest.split(':', 1)[1]}", manifest)
        # ref.name is the tag (what `skopeo … oci-archive:OUT:TAG` and podman match);
        # io.containerd.image.name the full name `docker load` gives the image.
        tar.file("index.json", json_bytes({
            "schemaVersion": 2, "mediaType": MEDIA["index"],
            "manifests": [{"mediaType": MEDIA["manifest"], "digest": manifest_digest, "size": len(manifest),
                           "annotations": {"org.opencontainers.image.ref.name": tag,
                                           "io.containerd.image.name": _full_name(repo, tag)}}]}))
    else:
        config_name = f"{config_digest.split(':', 1)[1]}.json"
        tar.file(f"{diff_hex}/VERSION", b"1.0")
        tar.file(config_name, config)
        tar.file("manifest.json", json_bytes([{"Config": config_name, "RepoTags": [name],
                                          "Layers": [f"{diff_hex}/layer.tar"]}]))
        tar.file("repositories", json_bytes({repo: {tag: diff_hex}}))
    tar.close()
    return ExportResult(path=Path(), format=fmt, name=name, layer_digest=sink.blob_digest, diff_id=sink.diff_id,
                        layer_bytes=sink.blob_bytes, tar_bytes=sink.tar_bytes, archive_bytes=0,
                        config_from_engine=info.from_extension)


def _full_name(repo: str, tag: str) -> str:
    """docker.io/library/NAME:TAG for a short name, as containerd records images."""
    first = repo.split("/", 1)[0]
    if "/" in repo and ("." in first or ":" in first or first == "localhost"):
        return f"{repo}:{tag}"
    return f"docker.io/{repo if '/' in repo else 'library/' + repo}:{tag}"


BATCH = 1 << 20  # bytes handed to the hashing/compressing thread at once: ~1,000 hand-offs for 1 GB
READ_AHEAD = 32  # chunks the download may run ahead of that thread (~2 MB at httpx's 64 KiB reads)


async def _stream_archive(connection: Connection, info: ImageInfo, sink: LayerSink,
                          progress: Progress | None) -> None:
    """Download the archive into `sink`. Hashing and gzip run in a thread while the next chunks arrive, so
    the download and the compression overlap (and the event loop stays free for the progress bar).

    Which side compresses: from the embedded engine the tar comes plain (a Unix socket gains nothing from
    gzip, and the engine would gzip in its event loop: a 50 MB image took ~5 s there, ~2.4 s here in a thread
    while the engine streams); from a hosted Contree, over a network, it comes gzip-encoded and for an
    oci-archive those bytes are the layer as they come."""
    client = connection.client
    spec = operations.build_inspect_image_archive(image_uuid=info.uuid, path="/")
    if not sink.gzip or connection.target.embedded:
        # A server may still encode it: the sink copes.
        spec = replace(spec, headers={**spec.headers, "Accept-Encoding": "identity"})
    body: AsyncIterator[bytes] = client.stream(spec, auto_decompress=False)
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(READ_AHEAD)

    async def read() -> None:
        async for chunk in body:
            await chunks.put(chunk)
        await chunks.put(None)

    reader = asyncio.ensure_future(read())
    try:
        ended = False
        while not ended:
            batch, size = [], 0
            while size < BATCH:
                waiting = asyncio.ensure_future(chunks.get())
                await asyncio.wait({waiting, reader}, return_when=asyncio.FIRST_COMPLETED)
                if not waiting.done() and reader.exception() is not None:  # the download failed
                    waiting.cancel()
                    reader.result()
                chunk = await waiting  # (a reader that ended has queued everything, None last)
                if chunk is None:
                    ended = True
                    break
                batch.append(chunk)
                size += len(chunk)
            if batch:
                await asyncio.to_thread(sink.feed, b"".join(batch))
                if progress is not None:
                    progress(sink.tar_bytes, info.total_size)
        await reader
    except NotFoundError:
        raise ExportError(f"image {info.uuid} is gone (deleted while exporting?)") from None
    except APIStatusError as exc:
        raise ExportError(f"the server refused the archive of {info.uuid}: HTTP {exc.status}: {exc.error}") from None
    except APIConnectionError as exc:
        raise ExportError(f"the archive of {info.uuid} was cut: {exc}") from None
    except zlib.error as exc:
        raise ExportError(f"the archive of {info.uuid} arrived corrupt ({exc})") from None
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await body.aclose()  # type: ignore[attr-defined]
