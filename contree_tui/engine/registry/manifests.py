"""Manifests, indexes and configs: the small JSON documents of an image, validated before anything is used.

Accepted: OCI image index / manifest and Docker manifest list / schema 2. Docker schema 1 (signed, no
config blob, no diff ids; deprecated since 2017) is refused with a 422 that says how to re-push. An index
is resolved to the host's platform (linux and platform.machine() in OCI's names: x86_64 → amd64, aarch64 →
arm64 with v8 or no variant, armv7l → arm/v7) by the rule oci: layouts use too
(image_sources/platform_choice.py); no match is a 422 listing the platforms the index has.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from contree_tui.engine.image_sources import platform_choice
from contree_tui.engine.image_sources.base import LayerBlob
from contree_tui.engine.models import EngineError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
# Schema 1 is left out on purpose: a registry that can convert serves schema 2 instead.
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

# Layers the import can extract: plain, gzip, zstd tars (OCI and Docker names, "non-distributable" ones too,
# which a private registry may hold). Encrypted layers (+encrypted) and Windows foreign layers are not.
LAYER_TYPES = frozenset({
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
})
FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")

@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int


def json_object(body: bytes, what: str) -> dict[str, Any]:
    """`body` as a JSON object; 422 naming `what` when it is not valid JSON or not an object."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise EngineError(f"{what} is not valid JSON: {exc}", 422) from exc
    if not isinstance(doc, dict):
        raise EngineError(f"{what} is not a JSON object", 422)
    return doc


def parse_document(body: bytes, content_type: str, what: str) -> tuple[str, dict[str, Any]]:
    """(media type, JSON object) of a manifest or index; 422 for schema 1, unknown kinds, bad JSON."""
    doc = json_object(body, what)
    media_type = doc.get("mediaType") if isinstance(doc.get("mediaType"), str) else ""
    header_type = content_type.split(";", 1)[0].strip()
    if doc.get("schemaVersion") == 1 or media_type in SCHEMA1 or header_type in SCHEMA1:
        raise EngineError(f"{what} is a Docker schema 1 manifest, which is not supported (deprecated since 2017: "
                          "no config, no layer digests to verify); push the image again with a current docker or "
                          "skopeo (they write schema 2 / OCI)", 422)
    if not media_type:
        # OCI allows the field to be absent: the shape says which document it is
        media_type = (header_type if header_type in INDEX_TYPES + MANIFEST_TYPES
                      else OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "layers" in doc else "")
    if media_type not in INDEX_TYPES + MANIFEST_TYPES:
        raise EngineError(f"{what} has the unsupported media type {media_type or header_type!r} "
                          f"(expected an OCI or Docker schema 2 image manifest or index)", 422)
    return media_type, doc


def descriptor(item: Any, what: str) -> Descriptor:
    if not isinstance(item, dict):
        raise EngineError(f"{what} is not a descriptor object", 422)
    digest, size, media_type = item.get("digest"), item.get("size"), item.get("mediaType", "")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise EngineError(f"{what} has the digest {str(digest)[:80]!r}; only sha256 digests are supported", 422)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise EngineError(f"{what} has no valid size", 422)
    return Descriptor(media_type if isinstance(media_type, str) else "", digest, size)


def choose_platform(index: dict[str, Any], what: str) -> tuple[Descriptor, str]:
    """The index entry for this machine (image_sources/platform_choice.py, shared with oci: layouts) and
    its "os/arch[/variant]"; 422 naming the platforms the index has when none matches."""
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise EngineError(f"{what} has no manifests list", 422)
    entry, name = platform_choice.choose_platform(entries[:1000], what)
    return descriptor(entry, f"{what} entry for {name}"), name


def manifest_parts(manifest: dict[str, Any], what: str) -> tuple[Descriptor, list[Descriptor]]:
    """(config, layers) of an image manifest, each layer of a type the import can extract."""
    config = descriptor(manifest.get("config"), f"{what} config")
    raw_layers = manifest.get("layers")
    if not isinstance(raw_layers, list):
        raise EngineError(f"{what} has no layers list", 422)
    layers = []
    for i, item in enumerate(raw_layers):
        layer = descriptor(item, f"{what} layer {i}")
        if layer.media_type == FOREIGN_LAYER:
            raise EngineError(f"{what} layer {i} is a foreign (Windows) layer, stored outside the registry: "
                              "not supported", 422)
        if layer.media_type not in LAYER_TYPES:
            raise EngineError(f"{what} layer {i} has the unsupported media type {layer.media_type[:100]!r}", 422)
        layers.append(layer)
    return config, layers


def parse_config(body: bytes, layers: list[Descriptor], what: str) -> tuple[dict[str, Any], tuple[LayerBlob, ...]]:
    """The config JSON and the layer blobs with their diff ids (config rootfs.diff_ids, one per layer)."""
    config = json_object(body, what)
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
        count = len(diff_ids) if isinstance(diff_ids, list) else 0
        raise EngineError(f"{what} lists {count} diff ids (rootfs.diff_ids) for {len(layers)} layers", 422)
    for diff_id in diff_ids:
        if not isinstance(diff_id, str) or not _SHA256.fullmatch(diff_id):
            raise EngineError(f"{what} has the diff id {str(diff_id)[:80]!r}; only sha256 is supported", 422)
    blobs = tuple(LayerBlob(digest=d.digest, size=d.size, media_type=d.media_type, diff_id=diff_id)
                  for d, diff_id in zip(layers, diff_ids, strict=True))
    return config, blobs
