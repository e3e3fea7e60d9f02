"""Image sources for imports, chosen by the reference's scheme (see base.py for the protocol)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from contree_tui.engine.image_sources.base import ImageSource, LayerBlob, Progress, ResolvedImage
from contree_tui.engine.models import EngineError

if TYPE_CHECKING:
    from contree_tui.engine.image_sources.tar_members import TarIndexer

__all__ = ["SCHEMES", "Credentials", "ImageSource", "LayerBlob", "Progress", "ResolvedImage", "open_source"]

# Our offline schemes (an extension of the API: the spec knows only registry references)
ARCHIVE_SCHEMES = ("docker-archive:", "oci-archive:", "oci:")
ROOTFS_SCHEME = "rootfs:"
SCHEMES = ("docker://", *ARCHIVE_SCHEMES, ROOTFS_SCHEME)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def open_source(url: str, credentials: Credentials | None = None, *, insecure: bool = False,
                timeout: float = 300.0, indexer: TarIndexer | None = None) -> ImageSource:
    """The source for `url`; a malformed reference is an EngineError (400) raised here, before any I/O.
    `indexer`: the engine's confined tar reader, which the archive schemes need (tar_members.py)."""
    if url.startswith("docker-archive:"):
        from contree_tui.engine.image_sources.archives import DockerArchiveSource
        return DockerArchiveSource(url[len("docker-archive:"):], indexer=indexer, timeout=timeout)
    if url.startswith("oci-archive:"):
        from contree_tui.engine.image_sources.archives import OciArchiveSource
        return OciArchiveSource(url[len("oci-archive:"):], indexer=indexer, timeout=timeout)
    if url.startswith("oci:"):
        from contree_tui.engine.image_sources.oci_layout import OciLayoutSource
        return OciLayoutSource(url[len("oci:"):])
    if url.startswith(ROOTFS_SCHEME):
        raise EngineError("rootfs: sources are imported as one plain layer, not through open_source")
    from contree_tui.engine.registry.source import RegistrySource
    return RegistrySource(url, credentials, insecure=insecure, timeout=timeout)
