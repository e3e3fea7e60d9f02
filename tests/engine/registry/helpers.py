"""Small helpers shared by the registry-source tests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from contree_tui.engine.image_sources import Credentials, ResolvedImage
from contree_tui.engine.registry.client import RegistrySettings
from contree_tui.engine.registry.source import RegistrySource

FAST = RegistrySettings(connect_timeout=2, read_timeout=1, max_retry_wait=3, busy_retries=3, error_retries=1,
                        backoff=0.05)


def source(url: str, creds: tuple[str, str] | None = None, *, timeout: float = 30, insecure: bool = False,
           settings: RegistrySettings = FAST) -> RegistrySource:
    return RegistrySource(url, Credentials(*creds) if creds else None, insecure=insecure, timeout=timeout,
                          settings=settings)


async def fetch_all(src: RegistrySource, image: ResolvedImage, dest: Path) -> list[Path]:
    """Every layer blob into dest/<n>, checking progress counts up to the blob's size."""
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, blob in enumerate(image.layers):
        seen: list[int] = []
        path = dest / str(i)
        await src.fetch_blob(blob, path, seen.append)
        assert seen == sorted(seen) and seen[-1] == blob.size == path.stat().st_size
        assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == blob.digest
        paths.append(path)
    return paths


def random_bytes(n: int) -> bytes:
    """Incompressible bytes: a gzip layer of them is as large as its content, and unique per call."""
    return os.urandom(n)
