"""`oci:DIR[:REF]`: an OCI image layout on this machine (what `skopeo copy ... oci:DIR:REF` and
`umoci` write): index.json → (image index →) manifest → config and layer blobs under blobs/<alg>/<hex>.

REF is matched against the `org.opencontainers.image.ref.name` annotations of index.json; without it the
layout must hold exactly one image (skopeo's rule). An image index is resolved to this host's platform.
The JSON documents are small and size-capped, and every blob is read by its digest and verified, so a
layout whose files were changed after it was written is refused, not imported. Layer blobs are only
copied (and hashed) here: they are extracted by a confined helper (oci_layer.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from contree_tui.engine.image_sources.base import LayerBlob, Progress, ResolvedImage
from contree_tui.engine.image_sources.platform_choice import choose_platform
from contree_tui.engine.models import EngineError, NotFound, Unprocessable

MAX_JSON = 4 << 20  # an index, manifest or config: real ones are a few KiB
COPY_CHUNK = 4 << 20
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
REF_NAME = "org.opencontainers.image.ref.name"
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")


def split_layout_ref(spec: str) -> tuple[str, str]:
    """`DIR[:REF]` → (DIR, REF or ""); the first colon splits, as skopeo's oci: transport does."""
    directory, _, ref = spec.partition(":")
    if not directory:
        raise EngineError("registry.url: oci: needs a directory, e.g. oci:/path/to/layout:latest")
    if not directory.startswith("/"):  # the engine is a daemon: its working directory is not the client's
        raise EngineError(f"registry.url: oci:{directory[:200]}: the layout's path must be absolute")
    if "\0" in spec:
        raise EngineError("registry.url: a path may not contain NUL")
    return directory, ref


class OciLayoutSource:
    def __init__(self, spec: str) -> None:
        self.directory, self.ref = split_layout_ref(spec)
        self.root = Path(self.directory)

    async def resolve(self) -> ResolvedImage:
        return await asyncio.to_thread(self._resolve)

    def _resolve(self) -> ResolvedImage:
        if not (self.root / "index.json").is_file():
            raise NotFound(f"{self.directory}: not an OCI image layout (no index.json)")
        index = _load_json(self.root / "index.json", "index.json")
        manifests = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
        if self.ref:
            chosen = [m for m in manifests if (m.get("annotations") or {}).get(REF_NAME) == self.ref]
            if not chosen:
                names = sorted({str((m.get("annotations") or {}).get(REF_NAME)) for m in manifests})
                raise NotFound(f"{self.directory}: no image named {self.ref!r} in the layout "
                               f"(it holds: {', '.join(names) or 'nothing'})")
        else:
            chosen = manifests
            if len(chosen) != 1:
                raise EngineError(f"{self.directory}: the layout holds {len(chosen)} images; name one "
                                  "(oci:DIR:REF)", status=404 if not chosen else 400)
        descriptor = chosen[-1]
        platform = ""
        if descriptor.get("mediaType") in INDEX_TYPES:
            sub = self._read_json_blob(descriptor, "image index")
            descriptor, platform = choose_platform(sub.get("manifests") or [], self.directory)
        manifest = self._read_json_blob(descriptor, "manifest")
        if manifest.get("mediaType", descriptor.get("mediaType")) not in (*MANIFEST_TYPES, None):
            raise Unprocessable(f"{self.directory}: unsupported manifest type {manifest.get('mediaType')!r}")
        config = self._read_json_blob(manifest.get("config") or {}, "config")
        layers = manifest.get("layers")
        if not isinstance(layers, list):
            raise Unprocessable(f"{self.directory}: the manifest lists no layers")
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(layers):
            raise Unprocessable(f"{self.directory}: the config names {len(diff_ids)} diff ids for "
                                f"{len(layers)} layers")
        blobs = []
        for layer, diff_id in zip(layers, diff_ids, strict=True):
            if not isinstance(layer, dict) or not DIGEST_RE.match(str(layer.get("digest"))):
                raise Unprocessable(f"{self.directory}: a layer descriptor has no sha256 digest")
            if not DIGEST_RE.match(str(diff_id)):
                raise Unprocessable(f"{self.directory}: the config's diff id {str(diff_id)[:80]!r} is not sha256")
            size = layer.get("size")
            blobs.append(LayerBlob(layer["digest"], size if isinstance(size, int) else -1,
                                   str(layer.get("mediaType") or ""), diff_id))
        return ResolvedImage(reference=f"oci:{self.directory}" + (f":{self.ref}" if self.ref else ""),
                             source_digest=descriptor["digest"], config=config, layers=tuple(blobs),
                             platform=platform)

    def _blob_path(self, digest: str) -> Path:
        if not DIGEST_RE.match(digest):
            raise Unprocessable(f"{self.directory}: {digest[:80]!r} is not a sha256 digest")
        return self.root / "blobs" / "sha256" / digest.split(":", 1)[1]

    def _read_json_blob(self, descriptor: dict[str, Any], what: str) -> dict[str, Any]:
        digest = str(descriptor.get("digest"))
        path = self._blob_path(digest)
        data = _read_capped(path, what)
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise Unprocessable(f"{self.directory}: the {what} blob does not match its digest {digest}")
        return _parse_json(data, what)

    async def fetch_blob(self, blob: LayerBlob, dest: Path, progress: Progress) -> None:
        source = self._blob_path(blob.digest)
        try:
            src = os.open(source, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            raise NotFound(f"{self.directory}: layer blob {blob.digest} is missing ({exc.strerror})") from None
        try:
            if not stat.S_ISREG(os.fstat(src).st_mode):
                raise Unprocessable(f"{self.directory}: layer blob {blob.digest} is not a regular file")
            dst = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                sha = hashlib.sha256()
                done = 0
                while True:  # one thread hop per 4 MiB: cancellable between chunks, never blocks the loop
                    chunk = await asyncio.to_thread(_copy_chunk, src, dst, sha)
                    if not chunk:
                        break
                    done += chunk
                    progress(done)
            finally:
                os.close(dst)
        finally:
            os.close(src)
        if "sha256:" + sha.hexdigest() != blob.digest:
            raise Unprocessable(f"{self.directory}: layer blob {blob.digest} does not match its digest")
        if blob.size >= 0 and done != blob.size:
            raise Unprocessable(f"{self.directory}: layer blob {blob.digest} holds {done} bytes, "
                                f"the manifest says {blob.size}")

    async def aclose(self) -> None:
        pass


def _copy_chunk(src: int, dst: int, sha: Any) -> int:
    data = os.read(src, COPY_CHUNK)
    if data:
        sha.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(dst, view):]
    return len(data)


def _read_capped(path: Path, what: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise NotFound(f"{path.parent.parent.parent}: the {what} blob {path.name[:16]}… is missing") from None
    except OSError as exc:
        raise Unprocessable(f"{path}: cannot read the {what} ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unprocessable(f"{path}: the {what} is not a regular file")
        if st.st_size > MAX_JSON:
            raise Unprocessable(f"{path}: the {what} is {st.st_size} bytes, more than {MAX_JSON >> 20} MiB")
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(MAX_JSON + 1)[:MAX_JSON]
    finally:
        os.close(fd)


def _load_json(path: Path, what: str) -> dict[str, Any]:
    return _parse_json(_read_capped(path, what), what)


def _parse_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise Unprocessable(f"the {what} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise Unprocessable(f"the {what} is not a JSON object")
    return doc
