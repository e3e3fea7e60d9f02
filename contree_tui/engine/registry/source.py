"""The registry image source: resolve a reference to a verified manifest + config, stream its blobs to disk.

    source = RegistrySource("docker://127.0.0.1:5000/team/app:1", None, insecure=False, timeout=300)
    image = await source.resolve()            # manifest (index → this machine's platform) and config
    await source.fetch_blob(image.layers[0], path, progress)   # streamed, sha256 and size verified

Every document is checked against the digest it was asked for (a tag's manifest has none to check: its
digest is computed from the bytes, and is what identifies the image for re-imports). The whole import
runs under the operation's timeout; a stall past the read timeout fails it earlier, naming what stalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from contree_tui.engine.image_sources.base import LayerBlob, Progress, ResolvedImage
from contree_tui.engine.models import EngineError
from contree_tui.engine.registry import manifests
from contree_tui.engine.registry.client import (
    CONFIG_CAP,
    MANIFEST_CAP,
    Deadline,
    RegistryClient,
    RegistrySettings,
    error_codes,
)
from contree_tui.engine.registry.reference import parse_reference

if TYPE_CHECKING:
    from contree_tui.engine.image_sources import Credentials



class RegistrySource:
    def __init__(self, url: str, credentials: Credentials | None, *, insecure: bool = False,
                 timeout: float = 300.0, settings: RegistrySettings | None = None) -> None:
        self.reference = parse_reference(url)  # 400 for a malformed reference, before any I/O
        self.timeout = timeout
        self._client = RegistryClient(
            self.reference, credentials.username if credentials else None,
            credentials.password if credentials else None, insecure=insecure,
            deadline=Deadline(timeout), settings=settings or RegistrySettings())

    async def aclose(self) -> None:
        await self._client.aclose()

    async def resolve(self) -> ResolvedImage:
        async with self._within_deadline("resolving the image"):
            return await self._resolve()

    async def fetch_blob(self, blob: LayerBlob, dest: Path, progress: Progress) -> None:
        async with self._within_deadline(f"downloading blob {blob.digest}"):
            await self._fetch_blob(blob, dest, progress)

    # -- resolve ------------------------------------------------------------------------------------

    async def _resolve(self) -> ResolvedImage:
        ref = self.reference
        body, content_type, digest = await self._get_manifest(ref.manifest_ref, ref.digest)
        what = f"the manifest of {ref}"
        media_type, doc = manifests.parse_document(body, content_type, what)
        chosen = ""
        extra: dict[str, object] = {"registry": ref.registry, "repository": ref.repository, "tag": ref.tag}
        if media_type in manifests.INDEX_TYPES:
            entry, chosen = manifests.choose_platform(doc, f"the image index of {ref}")
            extra["index_digest"] = digest
            what = f"the {chosen} manifest of {ref}"
            body, content_type, digest = await self._get_manifest(entry.digest, entry.digest)
            media_type, doc = manifests.parse_document(body, content_type, what)
            if media_type not in manifests.MANIFEST_TYPES:
                raise EngineError(f"{what} is an index inside an index: not supported", 422)
        extra["media_type"] = media_type
        config_desc, layers = manifests.manifest_parts(doc, what)
        config_body = await self._get_config(config_desc)
        config, blobs = manifests.parse_config(config_body, layers, f"the image config of {ref}")
        return ResolvedImage(reference=ref.canonical(), source_digest=digest, config=config, layers=blobs,
                             platform=chosen, extra=extra)

    async def _get_manifest(self, ref: str, expect: str | None) -> tuple[bytes, str, str]:
        """(bytes, content type, sha256 digest) of a manifest or index; the digest checked when pinned."""
        reference = self.reference
        what = f"the manifest {reference.repository}:{ref}" if expect is None else f"the manifest {ref}"
        resp = await self._client.get(f"{reference.repository}/manifests/{ref}", what, accept=manifests.ACCEPT)
        try:
            if resp.status_code == 404:
                body = await self._client.read_capped(resp, 64 << 10, "an error body")
                raise await self._unknown(body)
            if resp.status_code != 200:
                detail = await self._client.error_detail(resp)
                raise EngineError(f"registry {reference.registry} answered {resp.status_code} to {what}"
                                  + (f": {detail}" if detail else ""), 502)
            body = await self._client.read_capped(resp, MANIFEST_CAP, what)
            content_type = resp.headers.get("content-type", "")
        finally:
            await resp.aclose()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if expect is not None and digest != expect:
            raise EngineError(f"registry {reference.registry} sent {what} whose content has the digest "
                              f"{digest}: refused", 502)
        return body, content_type, digest

    async def _unknown(self, body: bytes) -> EngineError:
        """404 on a manifest: which of the repository and the tag is missing.

        The registry's error code says it when it can (NAME_UNKNOWN vs MANIFEST_UNKNOWN); distribution 2.x
        answers MANIFEST_UNKNOWN for both, so a missing tag is told apart by the repository's tag list
        (one more small GET, on the error path only), which also shows the user the tags there are.
        """
        ref = self.reference
        codes = {code for code, _ in error_codes(body)}
        missing = (f"has no manifest {ref.digest}" if ref.digest else f"has no tag {ref.tag!r}")
        if "NAME_UNKNOWN" in codes:
            why = f"the registry {ref.registry} has no repository {ref.repository!r}"
        else:
            why = f"the repository {ref.registry}/{ref.repository} {missing}"
            tags = await self._tags()
            if tags is None:
                why = f"the registry {ref.registry} has no repository {ref.repository!r}"
            elif tags:
                shown = ", ".join(tags[:10]) + (", ..." if len(tags) > 10 else "")
                why += f" (its tags: {shown})"
        return EngineError(f"unknown repository or tag: {ref}: {why}", 404)

    async def _tags(self) -> list[str] | None:
        """The repository's tags (first page), [] when they cannot be listed, None when it does not exist."""
        try:
            resp = await self._client.get(f"{self.reference.repository}/tags/list?n=100", "the tag list")
        except EngineError:
            return []
        try:
            body = await self._client.read_capped(resp, 256 << 10, "the tag list")
        except EngineError:
            return []
        finally:
            await resp.aclose()
        codes = {code for code, _ in error_codes(body)}
        if resp.status_code == 404 and "NAME_UNKNOWN" in codes:
            return None
        try:
            tags = json.loads(body).get("tags") if resp.status_code == 200 else []
        except (ValueError, AttributeError):
            return []
        return [t for t in tags if isinstance(t, str)][:100] if isinstance(tags, list) else []

    async def _get_config(self, desc: manifests.Descriptor) -> bytes:
        what = f"the image config {desc.digest}"
        if desc.size > CONFIG_CAP:
            raise EngineError(f"{what} is {desc.size} bytes, over the {CONFIG_CAP >> 20} MiB limit", 422)
        resp = await self._client.get(f"{self.reference.repository}/blobs/{desc.digest}", what)
        try:
            if resp.status_code != 200:
                raise await self._blob_error(resp, what)
            body = await self._client.read_capped(resp, CONFIG_CAP, what)
        finally:
            await resp.aclose()
        got = "sha256:" + hashlib.sha256(body).hexdigest()
        if got != desc.digest or len(body) != desc.size:
            raise EngineError(f"digest mismatch: registry {self.reference.registry} sent {what} as {len(body)} "
                              f"bytes with the digest {got} (the manifest says {desc.size} bytes)", 502)
        return body

    async def _blob_error(self, resp: httpx.Response, what: str) -> EngineError:
        detail = await self._client.error_detail(resp)
        if resp.status_code == 404:
            return EngineError(f"registry {self.reference.registry} has no {what} in {self.reference.repository}"
                               + (f" ({detail})" if detail else ""), 404)
        return EngineError(f"registry {self.reference.registry} answered {resp.status_code} to {what}"
                           + (f": {detail}" if detail else ""), 502)

    # -- blobs --------------------------------------------------------------------------------------

    async def _fetch_blob(self, blob: LayerBlob, dest: Path, progress: Progress) -> None:
        registry = self.reference.registry
        what = f"blob {blob.digest}"
        if not blob.digest.startswith("sha256:"):
            raise EngineError(f"{what}: only sha256 digests are supported", 422)
        resp = await self._client.get(f"{self.reference.repository}/blobs/{blob.digest}", what)
        try:
            if resp.status_code != 200:
                raise await self._blob_error(resp, what)
            hasher = hashlib.sha256()
            done = 0
            with open(dest, "wb") as out:
                try:
                    async for chunk in resp.aiter_raw():  # as received (≤64 KiB reads)
                        done += len(chunk)
                        if 0 <= blob.size < done:
                            raise EngineError(f"registry {registry} sent more than the {blob.size} bytes the "
                                              f"manifest gives {what}: refused", 502)
                        hasher.update(chunk)
                        out.write(chunk)
                        progress(done)
                except httpx.ReadTimeout as exc:
                    raise EngineError(f"registry {registry} stalled: no data for "
                                      f"{self._client.settings.read_timeout:g} s while downloading {what} "
                                      f"({done} of {blob.size} bytes received)", 504) from exc
                except httpx.TransportError as exc:
                    raise EngineError(f"registry {registry} broke off {what} after {done} of {blob.size} "
                                      f"bytes: {exc or type(exc).__name__}", 502) from exc
        finally:
            await resp.aclose()
        if 0 <= blob.size != done:
            raise EngineError(f"registry {registry} sent {done} bytes of {what}, the manifest says {blob.size}", 502)
        got = "sha256:" + hasher.hexdigest()
        if got != blob.digest:
            raise EngineError(f"digest mismatch: registry {registry} sent {what} whose content has the digest "
                              f"{got}", 502)

    # -- deadline -----------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _within_deadline(self, what: str) -> AsyncIterator[None]:
        """asyncio.timeout at the operation's end, turned into a message naming the registry and the step."""
        scope = asyncio.timeout(max(self._client.deadline.left(), 0.0))
        try:
            async with scope:
                yield
        except TimeoutError:
            if not scope.expired():
                raise
            raise EngineError(f"import from registry {self.reference.registry} timed out after "
                              f"{self.timeout:g} s while {what}", 504) from None
