"""A registry that misbehaves: busy (429/503 + Retry-After), stalls, redirects, unreachable; TLS and IPv6."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from contree_tui.engine.models import EngineError
from contree_tui.engine.registry import manifests
from contree_tui.engine.registry.client import RegistrySettings
from contree_tui.engine.registry.reference import parse_reference
from contree_tui.engine.registry.source import RegistrySource
from tests.engine.registry.helpers import FAST, fetch_all, random_bytes, source
from tests.images.oci_build import skopeo_copy, write_layout
from tests.images.registry import FaultProxy, Registry, free_port, have_registry, make_tls_cert


@pytest.fixture(scope="module")
def pushed(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """faults/app:v1 in the registry: a small layer and a 400 kB one (diff ids returned)."""
    layout = tmp_path_factory.mktemp("faults-layout")
    built = write_layout(layout, [{"f": b"small"}, {"big": random_bytes(400_000)}], tag="v1")
    registry.push(layout, "v1", "faults/app")
    return built.diff_ids


@pytest.fixture
async def proxy(registry: Registry, pushed: list[str]) -> AsyncIterator[FaultProxy]:
    p = await FaultProxy(registry.host).start()
    yield p
    await p.stop()


@pytest.mark.parametrize("status", [429, 503])
async def test_busy_answers_are_retried_after_the_time_the_registry_asks(status: int, proxy: FaultProxy,
                                                                         pushed: list[str], tmp_path: Path) -> None:
    proxy.busy = {"/manifests/": 1, "/blobs/": 1}
    proxy.busy_status = status
    src = source(proxy.url("faults/app", "v1"))
    start = time.monotonic()
    try:
        image = await src.resolve()
        await fetch_all(src, image, tmp_path)
    finally:
        await src.aclose()
    elapsed = time.monotonic() - start
    assert [b.diff_id for b in image.layers] == pushed
    assert 1.9 <= elapsed < 10, elapsed  # two Retry-After: 1 waits, no more
    manifest_gets = [r for r in proxy.seen if "/manifests/" in r]
    assert len(manifest_gets) == 2


async def test_a_registry_busy_past_the_retries_fails_with_its_answer(proxy: FaultProxy) -> None:
    proxy.busy = {"/manifests/": 100}
    proxy.retry_after = "0"
    src = source(proxy.url("faults/app", "v1"), settings=dataclasses.replace(FAST, busy_retries=2))
    with pytest.raises(EngineError) as err:
        await src.resolve()
    await src.aclose()
    assert f"registry {proxy.host} answered 429" in str(err.value)
    assert len([r for r in proxy.seen if "/manifests/" in r]) == 3


async def test_a_retry_after_past_the_deadline_fails_at_once(proxy: FaultProxy) -> None:
    proxy.busy = {"/manifests/": 1}
    proxy.retry_after = "3600"
    settings = dataclasses.replace(FAST, max_retry_wait=3600)
    src = source(proxy.url("faults/app", "v1"), timeout=5, settings=settings)
    start = time.monotonic()
    with pytest.raises(EngineError, match=r"asked to wait 3600 s .* past the import's 5 s timeout"):
        await src.resolve()
    await src.aclose()
    assert time.monotonic() - start < 2


async def test_a_registry_that_never_answers_fails_within_the_read_timeout(proxy: FaultProxy) -> None:
    proxy.stall_all = True
    src = source(proxy.url("faults/app", "v1"))  # read timeout 1 s
    start = time.monotonic()
    with pytest.raises(EngineError) as err:
        await src.resolve()
    await src.aclose()
    assert time.monotonic() - start < 4
    assert err.value.status == 504
    assert f"registry {proxy.host} stalled: no answer within 1 s" in str(err.value)


async def test_a_blob_that_stops_midway_fails_naming_the_blob_and_the_bytes_received(
        proxy: FaultProxy, tmp_path: Path) -> None:
    src = source(proxy.url("faults/app", "v1"))
    try:
        image = await src.resolve()
        proxy.stall_blob_after = 100_000
        start = time.monotonic()
        with pytest.raises(EngineError) as err:
            await src.fetch_blob(image.layers[1], tmp_path / "blob", lambda n: None)
    finally:
        await src.aclose()
    assert time.monotonic() - start < 4
    message = str(err.value)
    assert f"registry {proxy.host} stalled" in message and image.layers[1].digest in message
    assert f"100000 of {image.layers[1].size} bytes received" in message


async def test_the_operation_deadline_bounds_everything(proxy: FaultProxy) -> None:
    proxy.stall_all = True
    slow_reads = dataclasses.replace(FAST, read_timeout=60)
    src = source(proxy.url("faults/app", "v1"), timeout=1.5, settings=slow_reads)
    start = time.monotonic()
    with pytest.raises(EngineError) as err:
        await src.resolve()
    await src.aclose()
    assert time.monotonic() - start < 3
    assert str(err.value) == f"import from registry {proxy.host} timed out after 1.5 s while resolving the image"


async def test_blobs_are_followed_through_redirects(proxy: FaultProxy, pushed: list[str], tmp_path: Path) -> None:
    proxy.redirect_blobs = True
    src = source(proxy.url("faults/app", "v1"))
    try:
        image = await src.resolve()
        await fetch_all(src, image, tmp_path)
    finally:
        await src.aclose()
    assert sum("redirected=1" in r for r in proxy.seen) == 3  # the config and both layers


async def test_an_unreachable_registry_says_so_for_both_schemes() -> None:
    port = free_port()
    src = source(f"docker://127.0.0.1:{port}/x/y:1")
    with pytest.raises(EngineError) as err:
        await src.resolve()
    await src.aclose()
    assert err.value.status == 502
    # the socket's own words, not httpx's "All connection attempts failed"
    assert str(err.value) == (f"cannot reach registry 127.0.0.1:{port}: https: connection refused; "
                              "http: connection refused")


def test_only_loopback_or_insecure_registries_may_use_plain_http() -> None:
    def schemes(url: str, insecure: bool = False) -> list[str]:
        src = RegistrySource(url, None, insecure=insecure, timeout=10)
        return [c.split("://")[0] for c in src._client._candidates()]
    assert schemes("docker://registry.example.com/x") == ["https"]
    assert schemes("docker://10.0.0.5:5000/x") == ["https"]
    assert schemes("docker://registry.example.com/x", insecure=True) == ["https", "http"]
    for loopback in ("127.0.0.1:5000", "127.1.2.3:5000", "localhost:5000", "[::1]:5000"):
        assert parse_reference(f"{loopback}/x").is_loopback
        assert schemes(f"docker://{loopback}/x") == ["https", "http"]


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, Path]]:
    if not have_registry():
        pytest.skip("docker-registry and skopeo are not installed")
    root = tmp_path_factory.mktemp("tls-registry")
    cert, key = make_tls_cert(root / "tls")
    reg = Registry.start(root, tls=(cert, key))
    layout = root / "layout"
    write_layout(layout, [{"f": b"over tls"}], tag="v1")
    reg.push(layout, "v1", "tls/app")
    yield reg, cert
    reg.stop()


async def test_https_is_tried_first_and_verified(tls_registry: tuple[Registry, Path], tmp_path: Path) -> None:
    reg, cert = tls_registry
    before = len(reg.requests())
    trusted = dataclasses.replace(FAST, ca_file=str(cert))
    src = source(reg.url("tls/app", "v1"), settings=trusted)
    try:
        image = await src.resolve()
        await fetch_all(src, image, tmp_path)
        assert src._client._base == f"https://{reg.host}"
    finally:
        await src.aclose()
    assert len(reg.requests()) > before


async def test_an_untrusted_certificate_is_refused_unless_insecure(tls_registry: tuple[Registry, Path],
                                                                   tmp_path: Path) -> None:
    reg, _ = tls_registry
    src = source(reg.url("tls/app", "v1"))  # the system CAs do not know the test certificate
    with pytest.raises(EngineError) as err:
        await src.resolve()
    await src.aclose()
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value) or "certificate verify failed" in str(err.value)
    assert "http: GET /v2/ answered 400 (not a registry API)" in str(err.value)  # the TLS port refuses plain HTTP
    src = source(reg.url("tls/app", "v1"), insecure=True)  # docker's --insecure-registry: https, unverified
    try:
        image = await src.resolve()
        await fetch_all(src, image, tmp_path)
        assert src._client._base == f"https://{reg.host}"
    finally:
        await src.aclose()


async def test_plain_http_is_the_fallback_on_loopback(registry: Registry, pushed: list[str]) -> None:
    src = source(registry.url("faults/app", "v1"))
    try:
        assert [b.diff_id for b in (await src.resolve()).layers] == pushed
        assert src._client._base == f"http://{registry.host}"
    finally:
        await src.aclose()


async def test_an_ipv6_loopback_registry(tmp_path: Path) -> None:
    if not have_registry():
        pytest.skip("docker-registry and skopeo are not installed")
    try:
        reg = Registry.start(tmp_path / "v6", bind="::1")
    except (OSError, RuntimeError) as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        built = write_layout(tmp_path / "layout", [{"f": b"v6"}], tag="v1")
        # skopeo 1.9 cannot parse an IPv6 literal in a reference: push through a proxy on 127.0.0.1
        pusher = await FaultProxy(reg.host).start()
        try:
            await asyncio.to_thread(skopeo_copy, f"oci:{tmp_path / 'layout'}:v1", pusher.url("six/app", "v1"))
        finally:
            await pusher.stop()
        src = source(f"docker://{reg.host}/six/app:v1")
        try:
            image = await src.resolve()
            await fetch_all(src, image, tmp_path / "blobs")
        finally:
            await src.aclose()
        assert reg.host.startswith("[::1]:")
        assert image.source_digest == built.manifest_digest
    finally:
        reg.stop()


def test_settings_default_to_bounded_waits() -> None:
    s = RegistrySettings()
    assert 0 < s.connect_timeout <= 30 and 0 < s.read_timeout <= 120 and s.max_retry_wait <= 60


async def test_a_remembered_endpoint_that_stops_answering_is_probed_again(proxy: FaultProxy) -> None:
    src = source(proxy.url("faults/app", "v1"))
    await src.resolve()
    await src.aclose()
    await proxy.stop()
    src = source(proxy.url("faults/app", "v1"))
    with pytest.raises(EngineError) as err:
        await src.resolve()
    await src.aclose()
    # the probe's message (both schemes tried), not only the remembered http endpoint's refusal
    assert str(err.value).startswith(f"cannot reach registry {proxy.host}: https: ")
    assert "; http: " in str(err.value)


def _response(body: bytes, *, content_type: str = "application/json", length: int | None = None,
              status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nConnection: close\r\n"
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    return head.encode() + b"\r\n" + body


async def test_other_5xx_are_retried_with_backoff(proxy: FaultProxy, pushed: list[str]) -> None:
    proxy.busy = {"/manifests/": 1}
    proxy.busy_status = 500
    src = source(proxy.url("faults/app", "v1"))
    try:
        assert [b.diff_id for b in (await src.resolve()).layers] == pushed
    finally:
        await src.aclose()
    assert len([r for r in proxy.seen if "/manifests/" in r]) == 2


async def test_a_manifest_over_the_cap_is_refused_before_it_is_read(proxy: FaultProxy) -> None:
    # announced too large, and a body without a length that goes on past the cap: both refused
    cases = {"announced": _response(b"{}", length=5 << 20), "streamed": _response(b"[" * (5 << 20))}
    for case, response in cases.items():
        proxy.canned = {"/manifests/": response}
        src = source(proxy.url("faults/app", "v1"))
        with pytest.raises(EngineError) as err:
            await src.resolve()
        await src.aclose()
        assert err.value.status == 502, case
        assert "over the 4096 KiB limit" in str(err.value), case


async def test_a_schema_1_manifest_from_the_registry_is_422(proxy: FaultProxy) -> None:
    body = json.dumps({"schemaVersion": 1, "name": "faults/app", "tag": "v1", "fsLayers": [],
                       "signatures": []}).encode()
    proxy.canned = {"/manifests/": _response(body, content_type=manifests.SCHEMA1[1], length=len(body))}
    src = source(proxy.url("faults/app", "v1"))
    with pytest.raises(EngineError) as err:
        await src.resolve()
    await src.aclose()
    assert err.value.status == 422 and "Docker schema 1 manifest" in str(err.value)


async def test_a_manifest_that_does_not_match_its_digest_is_refused(registry: Registry, proxy: FaultProxy) -> None:
    """A pinned reference: the bytes the registry sends must hash to the digest asked for."""
    body = json.dumps({"schemaVersion": 2, "mediaType": manifests.OCI_MANIFEST, "config": {}, "layers": []}).encode()
    proxy.canned = {"/manifests/sha256:": _response(body, content_type=manifests.OCI_MANIFEST, length=len(body))}
    wanted = "sha256:" + "1" * 64
    src = source(f"docker://{proxy.host}/faults/app@{wanted}")
    with pytest.raises(EngineError) as err:
        await src.resolve()
    await src.aclose()
    assert err.value.status == 502 and f"the manifest {wanted}" in str(err.value) and "refused" in str(err.value)


async def test_proxy_variables_do_not_apply_to_loopback_registries(registry: Registry, pushed: list[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # a proxy that refuses every connection
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    src = source(registry.url("faults/app", "v1"))
    try:
        assert [b.diff_id for b in (await src.resolve()).layers] == pushed
    finally:
        await src.aclose()


async def test_403_is_access_denied_with_the_registrys_reason(proxy: FaultProxy) -> None:
    body = b'{"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}'
    proxy.canned = {"/manifests/": _response(body, length=len(body), status="403 Forbidden")}
    src = source(proxy.url("faults/app", "v1"), ("someone", "pw"))
    with pytest.raises(EngineError) as err:
        await src.resolve()
    await src.aclose()
    assert err.value.status == 403
    assert str(err.value) == (f"authentication failed for {proxy.host}: user 'someone' may not pull faults/app "
                              "(DENIED: requested access to the resource is denied)")
