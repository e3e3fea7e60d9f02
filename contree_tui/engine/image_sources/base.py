"""What every image source gives the import operation: a resolved image (config + layer blobs) and its blobs.

Sources: a registry (`docker://...` or a bare `name:tag`), `docker-archive:PATH`, `oci-archive:PATH`,
`oci:DIR[:REF]`. The import operation (engine/image_import.py) asks a source to resolve, skips layers whose
diff id is already stored, has the others fetched into files of its own, and extracts each in a confined helper.
A source never extracts or executes image content; it moves bytes and checks their digests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Called with the bytes of the blob written so far (monotonic), as often as is cheap (per chunk).
Progress = Callable[[int], None]


@dataclass(frozen=True)
class LayerBlob:
    digest: str  # "sha256:<hex>" of the blob as the source holds it (compressed or not); verified on fetch
    size: int  # its size in bytes, as the manifest says (-1 if the source does not know)
    media_type: str  # e.g. application/vnd.oci.image.layer.v1.tar+gzip; "" if unknown (the extractor sniffs)
    diff_id: str | None = None  # "sha256:<hex>" of the uncompressed tar (config rootfs.diff_ids), the store's key


@dataclass(frozen=True)
class ResolvedImage:
    reference: str  # canonical form, for messages and metadata: docker://registry/repo:tag, oci:DIR:ref, ...
    source_digest: str  # identifies the content (a manifest digest): importing it again returns the same image
    config: dict[str, Any]  # the image config JSON (its "config" holds Env, WorkingDir, User)
    layers: tuple[LayerBlob, ...]  # bottom first
    platform: str = ""  # os/arch[/variant] chosen from an index, "" when there was no index
    extra: dict[str, Any] = field(default_factory=dict)


class ImageSource(Protocol):
    async def resolve(self) -> ResolvedImage:
        """Read the manifest and config (small, size-capped JSON); raise EngineError with a clear message
        (status 404 unknown repository/tag, 401/403 auth, 422 no matching platform or unsupported manifest)."""
        ...

    async def fetch_blob(self, blob: LayerBlob, dest: Path, progress: Progress) -> None:
        """Stream the blob into the new file `dest` (never whole in memory), verifying its digest; on a
        mismatch or a short read raise EngineError and leave `dest` for the caller to delete."""
        ...

    async def aclose(self) -> None:
        ...
