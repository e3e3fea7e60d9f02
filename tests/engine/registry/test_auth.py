"""Protected repositories: htpasswd (Basic auth) and the Docker token flow (Bearer JWTs from a token server)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from contree_tui.engine.models import EngineError
from tests.engine.registry.conftest import PASSWORD, USER
from tests.engine.registry.helpers import fetch_all, source
from tests.images.oci_build import write_layout
from tests.images.registry import Registry


async def _push(reg: Registry, tmp_path: Path, repo: str) -> list[str]:
    built = write_layout(tmp_path / "layout", [{"f": b"secret"}, {"g": b"more"}], tag="v1")
    reg.push(tmp_path / "layout", "v1", repo)
    return built.diff_ids


@pytest.mark.parametrize("kind", ["htpasswd", "token"])
async def test_right_credentials_resolve_and_fetch(kind: str, htpasswd_registry: Registry, token_registry: Registry,
                                                   tmp_path: Path) -> None:
    reg = htpasswd_registry if kind == "htpasswd" else token_registry
    diff_ids = await _push(reg, tmp_path, "private/app")
    issued_before = len(reg.token_server.issued) if reg.token_server else 0
    src = source(reg.url("private/app", "v1"), (USER, PASSWORD))
    try:
        image = await src.resolve()
        assert [b.diff_id for b in image.layers] == diff_ids
        await fetch_all(src, image, tmp_path / "blobs")
    finally:
        await src.aclose()
    if reg.token_server is not None:
        # one token for the repository's pull scope served the manifest, the config and both layers
        issued = reg.token_server.issued[issued_before:]
        assert issued == [{"subject": USER, "scopes": ["repository:private/app:pull"],
                           "service": "contree-test-registry"}]


@pytest.mark.parametrize("kind", ["htpasswd", "token"])
async def test_wrong_credentials_are_401_authentication_failed(kind: str, htpasswd_registry: Registry,
                                                               token_registry: Registry, tmp_path: Path) -> None:
    reg = htpasswd_registry if kind == "htpasswd" else token_registry
    await _push(reg, tmp_path, "private/wrong")
    src = source(reg.url("private/wrong", "v1"), (USER, "not-the-password"))
    with pytest.raises(EngineError) as err:
        await src.resolve()
    await src.aclose()
    assert err.value.status == 401
    assert str(err.value).startswith(f"authentication failed for {reg.host}: ")
    assert f"user '{USER}'" in str(err.value)
    assert "not-the-password" not in str(err.value)


@pytest.mark.parametrize("kind", ["htpasswd", "token"])
async def test_no_credentials_are_401_authentication_required(kind: str, htpasswd_registry: Registry,
                                                              token_registry: Registry, tmp_path: Path) -> None:
    reg = htpasswd_registry if kind == "htpasswd" else token_registry
    await _push(reg, tmp_path, "private/anon")
    src = source(reg.url("private/anon", "v1"))
    with pytest.raises(EngineError) as err:
        await src.resolve()
    await src.aclose()
    assert err.value.status == 401
    assert str(err.value).startswith(f"authentication required for {reg.host}: ")
    assert "needs registry credentials" in str(err.value)


async def test_concurrent_blob_fetches_share_one_token(token_registry: Registry, tmp_path: Path) -> None:
    built = write_layout(tmp_path / "layout", [{"a": b"1"}, {"b": b"2"}, {"c": b"3"}, {"d": b"4"}], tag="v1")
    token_registry.push(tmp_path / "layout", "v1", "private/parallel")
    issued_before = len(token_registry.token_server.issued)
    src = source(token_registry.url("private/parallel", "v1"), (USER, PASSWORD))
    try:
        image = await src.resolve()
        src._client._tokens.drop(src._client.scope)  # as if the token expired: all four ask at once
        await asyncio.gather(*(src.fetch_blob(b, tmp_path / f"b{i}", lambda n: None)
                               for i, b in enumerate(image.layers)))
    finally:
        await src.aclose()
    assert [b.digest for b in image.layers] == built.layer_digests
    assert len(token_registry.token_server.issued) - issued_before == 2  # resolve's, then one for the four
