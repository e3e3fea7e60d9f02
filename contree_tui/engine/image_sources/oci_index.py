"""From an OCI layout's index.json to one image: reference → manifest (through an image index, by the host's
platform) → config + layers. Shared by every source that holds an OCI layout (`oci:DIR`, `oci-archive:`, the
OCI half of a newer `docker save`); each gives a `read_blob(digest, max_bytes)` and this module checks what
comes back (size cap, digest, shape) before anything is used.

References follow skopeo (containers/image oci/layout): none = the layout's only image; `@N` = its N-th entry
(0-based); otherwise the entry whose `org.opencontainers.image.ref.name` annotation equals it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from contree_tui.engine.image_sources.base import LayerBlob, ResolvedImage
from contree_tui.engine.image_sources.platform_choice import choose_platform
from contree_tui.engine.models import EngineError, NotFound, Unprocessable

# (digest, max_bytes) -> the blob's bytes, at most max_bytes (more: raise Unprocessable); NotFound if absent.
ReadBlob = Callable[[str, int], Awaitable[bytes]]

# Registries refuse manifests over 4 MiB (distribution's default limit), so no real one is larger; a config
# carries the image's history and labels: the largest seen in Docker Hub's top images are ~100 KiB.
MAX_INDEX_BYTES = 4 << 20
MAX_MANIFEST_BYTES = 4 << 20
MAX_CONFIG_BYTES = 8 << 20
MAX_LAYERS = 500  # overlayfs mounts up to 500 lowers (minus the scaffold); Docker caps images at 127

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
PLAIN_TAR_TYPES = ("application/vnd.oci.image.layer.v1.tar", "application/vnd.docker.image.rootfs.diff.tar")
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
REF_NAME = "org.opencontainers.image.ref.name"

DIGEST_RE = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
# The OCI image spec's grammar for ref.name annotations (annotations.md): components of alphanumerics
# joined by - . _ : @ + or "--", separated by "/".
_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
REF_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
INDEX_REF_RE = re.compile(r"^@(\d{1,6})$")


def validate_ref(ref: str, where: str) -> str:
    """A layout reference as the user wrote it (after PATH:), or a 400 before any I/O."""
    if INDEX_REF_RE.match(ref) or (len(ref) <= 512 and REF_RE.match(ref)):
        return ref
    raise EngineError(f"{where}: {ref[:100]!r} is not a valid reference (a name like `latest` or `v1.2`, "
                      "or `@N` for the N-th image of the layout)")


def check_digest(digest: object, where: str) -> str:
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise Unprocessable(f"{where}: {str(digest)[:100]!r} is not a sha256 or sha512 digest")
    return digest


def blob_digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def parse_json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Unprocessable(f"{what} is not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(value, dict):
        raise Unprocessable(f"{what} is not a JSON object")
    return value


async def read_verified(read_blob: ReadBlob, descriptor: dict[str, Any], cap: int, what: str) -> bytes:
    """The blob a descriptor names, checked against its digest and size (both chosen by the image's author:
    a mismatch is a damaged or forged layout)."""
    digest = check_digest(descriptor.get("digest"), what)
    size = descriptor.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and size > cap:
        raise Unprocessable(f"{what} {digest} is {size} bytes; at most {cap} are accepted")
    data = await read_blob(digest, cap)
    if blob_digest(data, digest.split(":", 1)[0]) != digest:
        raise Unprocessable(f"{what} {digest}: its content does not match its digest (damaged or altered)")
    if isinstance(size, int) and size != len(data):
        raise Unprocessable(f"{what} {digest}: {len(data)} bytes where its descriptor says {size}")
    return data


def select_entry(index: dict[str, Any], ref: str | None, where: str) -> dict[str, Any]:
    """The descriptor in the layout's index.json that `ref` names (skopeo's rules, module docstring)."""
    manifests = index.get("manifests")
    if not isinstance(manifests, list) or not all(isinstance(m, dict) for m in manifests):
        raise Unprocessable(f"{where}: index.json has no valid \"manifests\" list")
    names = [str(_annotations(m).get(REF_NAME)) for m in manifests if _annotations(m).get(REF_NAME)]
    if not ref:
        if len(manifests) == 1:
            return manifests[0]
        if not manifests:
            raise Unprocessable(f"{where}: the layout holds no image (index.json lists none)")
        raise EngineError(f"{where}: the layout holds {len(manifests)} images; name one by appending :REF "
                          f"(one of: {_listing(names)}) or :@N to the reference")
    if match := INDEX_REF_RE.match(ref):
        number = int(match.group(1))
        if number >= len(manifests):
            raise NotFound(f"{where}: no image @{number}: the layout holds {len(manifests)} "
                           f"(@0..@{len(manifests) - 1})")
        return manifests[number]
    for entry in manifests:
        if _annotations(entry).get(REF_NAME) == ref:
            return entry
    raise NotFound(f"{where}: no image named {ref!r} in the layout (it holds: {_listing(names)})")


def _annotations(descriptor: dict[str, Any]) -> dict[str, Any]:
    annotations = descriptor.get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def _listing(names: list[str]) -> str:
    if not names:
        return "no named images"
    shown = ", ".join(repr(n[:100]) for n in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def _kind(descriptor: dict[str, Any], body: dict[str, Any]) -> str:
    """"index" or "manifest": the descriptor's media type, else the body's own, else its shape."""
    for media_type in (descriptor.get("mediaType"), body.get("mediaType")):
        if media_type in INDEX_TYPES:
            return "index"
        if media_type in MANIFEST_TYPES:
            return "manifest"
    if isinstance(body.get("manifests"), list):
        return "index"
    if isinstance(body.get("layers"), list) and isinstance(body.get("config"), dict):
        return "manifest"
    if body.get("schemaVersion") == 1:
        raise Unprocessable("a Docker schema 1 manifest: that format is deprecated and not supported "
                            "(convert it with a newer skopeo or docker)")
    media_type = str(descriptor.get("mediaType") or body.get("mediaType"))
    raise Unprocessable(f"an unsupported manifest type {media_type[:100]!r}")


def layers_of(manifest: dict[str, Any], config: dict[str, Any], where: str) -> tuple[LayerBlob, ...]:
    """The manifest's layers with the config's diff ids (the store's keys), bottom first."""
    descriptors = manifest.get("layers")
    if not isinstance(descriptors, list):
        raise Unprocessable(f"{where}: the manifest has no \"layers\" list")
    if len(descriptors) > MAX_LAYERS:
        raise Unprocessable(f"{where}: {len(descriptors)} layers; at most {MAX_LAYERS} can be mounted")
    diff_ids = diff_ids_of(config, len(descriptors), where)
    layers = []
    for n, (descriptor, diff_id) in enumerate(zip(descriptors, diff_ids, strict=True)):
        if not isinstance(descriptor, dict):
            raise Unprocessable(f"{where}: layer {n} of the manifest is not a descriptor")
        size = descriptor.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise Unprocessable(f"{where}: layer {n} has no valid size")
        media_type = descriptor.get("mediaType")
        digest = check_digest(descriptor.get("digest"), f"{where}: layer {n}")
        if media_type in PLAIN_TAR_TYPES and digest != diff_id:
            # An uncompressed layer's blob is its tar: verifying the blob verifies the diff id it is stored under
            raise Unprocessable(f"{where}: layer {n} is an uncompressed tar ({digest}) but the config gives it "
                                f"the diff id {diff_id}: they must be equal")
        layers.append(LayerBlob(digest, size, media_type if isinstance(media_type, str) else "", diff_id))
    return tuple(layers)


def diff_ids_of(config: dict[str, Any], count: int, where: str) -> list[str]:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise Unprocessable(f"{where}: the image config has no rootfs.diff_ids")
    if len(diff_ids) != count:
        raise Unprocessable(f"{where}: the image config lists {len(diff_ids)} diff ids for {count} layers")
    return [check_digest(d, f"{where}: diff id {n}") for n, d in enumerate(diff_ids)]


@dataclass(frozen=True)
class LayoutImage:
    manifest_digest: str
    config_digest: str
    config: dict[str, Any]
    layers: tuple[LayerBlob, ...]
    platform: str  # chosen from an image index; "" when the reference named a manifest
    index_digest: str | None  # that image index, if any


async def resolve_layout(index_json: bytes, ref: str | None, read_blob: ReadBlob, where: str) -> LayoutImage:
    """index.json → the entry `ref` names → (image index → host platform →) manifest → config + layers."""
    index = parse_json_object(index_json, f"{where}: index.json")
    descriptor = select_entry(index, ref, where)
    chosen_platform, index_digest = "", None
    for _ in range(3):  # index.json → image index → manifest; one nested index more at most
        body_bytes = await read_verified(read_blob, descriptor, MAX_MANIFEST_BYTES, f"{where}: manifest")
        body = parse_json_object(body_bytes, f"{where}: manifest {descriptor['digest']}")
        try:
            kind = _kind(descriptor, body)
        except Unprocessable as exc:
            raise Unprocessable(f"{where}: {exc}") from None
        if kind == "manifest":
            break
        index_digest = descriptor["digest"]
        manifests = body.get("manifests")
        if not isinstance(manifests, list):
            raise Unprocessable(f"{where}: the image index has no \"manifests\" list")
        descriptor, chosen_platform = choose_platform(manifests, where)
    else:
        raise Unprocessable(f"{where}: image indexes nested too deep")
    config_descriptor = body.get("config")
    if not isinstance(config_descriptor, dict):
        raise Unprocessable(f"{where}: the manifest has no config descriptor")
    config_bytes = await read_verified(read_blob, config_descriptor, MAX_CONFIG_BYTES, f"{where}: config")
    config = parse_json_object(config_bytes, f"{where}: the image config")
    return LayoutImage(descriptor["digest"], config_descriptor["digest"], config, layers_of(body, config, where),
                       chosen_platform, index_digest)


def resolved(image: LayoutImage, reference: str, **extra: Any) -> ResolvedImage:
    """The import's view: the manifest digest identifies the content (the index's, if any, is kept aside)."""
    more = {"config_digest": image.config_digest, **extra}
    if image.index_digest:
        more["index_digest"] = image.index_digest
    return ResolvedImage(reference, image.manifest_digest, image.config, image.layers, image.platform, more)
