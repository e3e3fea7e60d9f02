"""`oci:DIR[:REF]`: an OCI image layout on this machine (what `skopeo copy ... oci:DIR:REF` and
`umoci` write): index.json → (image index →) manifest → config and layer blobs under blobs/<alg>/<hex>.

REF is matched against the `org.opencontainers.image.ref.name` annotations of index.json (or `@N`, its N-th
entry); without it the layout must hold exactly one image (skopeo's rule). An image index is resolved to this
host's platform. The resolution is oci_index.py's, shared with `oci-archive:` and `docker save` archives.
The JSON documents are small and size-capped, and every blob is read by its digest and verified, so a
layout whose files were changed after it was written is refused, not imported. Layer blobs are only
copied (and hashed) here: they are extracted by a confined helper (oci_layer.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from pathlib import Path

from contree_tui.engine.image_sources.base import LayerBlob, Progress, ResolvedImage
from contree_tui.engine.image_sources.blob_copy import copy_range
from contree_tui.engine.image_sources.oci_index import MAX_INDEX_BYTES, resolve_layout, resolved
from contree_tui.engine.models import EngineError, NotFound, Unprocessable

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


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
        self.where = f"oci:{self.directory}"

    async def resolve(self) -> ResolvedImage:
        index_json = await asyncio.to_thread(_read_capped, self.root / "index.json", MAX_INDEX_BYTES,
                                             self.directory, "index.json")

        async def read_blob(digest: str, cap: int) -> bytes:
            return await asyncio.to_thread(_read_capped, self._blob_path(digest), cap, self.directory,
                                           f"blob {digest}")

        image = await resolve_layout(index_json, self.ref or None, read_blob, self.where)
        return resolved(image, self.where + (f":{self.ref}" if self.ref else ""))

    def _blob_path(self, digest: str) -> Path:
        if not DIGEST_RE.match(digest):
            raise Unprocessable(f"{self.directory}: {digest[:80]!r} is not a sha256 digest")
        return self.root / "blobs" / "sha256" / digest.split(":", 1)[1]

    async def fetch_blob(self, blob: LayerBlob, dest: Path, progress: Progress) -> None:
        source = self._blob_path(blob.digest)
        try:
            src = os.open(source, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            raise NotFound(f"{self.directory}: layer blob {blob.digest} is missing ({exc.strerror})") from None
        try:
            st = os.fstat(src)
            if not stat.S_ISREG(st.st_mode):
                raise Unprocessable(f"{self.directory}: layer blob {blob.digest} is not a regular file")
            if blob.size >= 0 and st.st_size != blob.size:
                raise Unprocessable(f"{self.directory}: layer blob {blob.digest} holds {st.st_size} bytes, "
                                    f"the manifest says {blob.size}")
            digest = await copy_range(src, 0, st.st_size, dest, "sha256", progress, self.where)
        finally:
            os.close(src)
        if digest != blob.digest:
            raise Unprocessable(f"{self.directory}: layer blob {blob.digest} does not match its digest")

    async def aclose(self) -> None:
        pass


def _read_capped(path: Path, cap: int, directory: str, what: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        if path.name == "index.json":
            raise NotFound(f"{directory}: not an OCI image layout (no index.json)") from None
        raise NotFound(f"{directory}: the {what} is missing") from None
    except OSError as exc:
        raise Unprocessable(f"{path}: cannot read the {what} ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unprocessable(f"{path}: the {what} is not a regular file")
        if st.st_size > cap:
            raise Unprocessable(f"{path}: the {what} is {st.st_size} bytes, more than {cap >> 20} MiB")
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(cap + 1)[:cap]
    finally:
        os.close(fd)
