"""Issue #11: registry imports end to end — a real docker-registry on 127.0.0.1, the real engine behind the
API, the official clients. contree-client imports `docker://127.0.0.1:PORT/repo:tag` and runs commands in
the image; a second image sharing the base layer fetches only its own layer (counted in the registry's
access log); the same digest again is the same image at once; credentials go through the token flow;
errors are FAILED operations with the registry's precise reason. contree-sdk's images.oci() imports too.
(contree-cli is not installable here: not on this machine's package index.)
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from contree_client.httpx import ContreeAsyncClient
from contree_client.models import ImageImportRegistry, ImageImportRegistryCredentials

from contree_tui.engine.engine import Engine
from contree_tui.engine.http import create_app
from tests.api.conftest import serve, stop
from tests.api.helpers import run, text
from tests.images.busybox_layouts import BASE_FILES, TOP, busybox_layer
from tests.images.oci_build import write_layout
from tests.images.registry import FaultProxy, Registry, TokenServer, have_registry

USER, PASSWORD = "bob", "token-pw"

pytestmark = pytest.mark.skipif(not have_registry(), reason="docker-registry and skopeo are not installed")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry holding e2e/app:v1 (busybox base + a layer with a deletion, a change, an opaque dir) and
    e2e/other:v1 (the same base + another layer)."""
    root = tmp_path_factory.mktemp("e2e-registry")
    reg = Registry.start(root / "registry")
    base = busybox_layer(**BASE_FILES)
    write_layout(root / "app", [base, TOP], tag="v1", env=["PATH=/bin", "GREETING=from-registry"])
    reg.push(root / "app", "v1", "e2e/app")
    write_layout(root / "other", [base, {"etc/other": b"other image\n"}], tag="v1", env=["PATH=/bin"])
    reg.push(root / "other", "v1", "e2e/other")
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("e2e-token-registry")
    tokens = TokenServer.start(root / "tokens", {USER: PASSWORD})
    reg = Registry.start(root / "registry", auth=tokens.registry_auth(), creds=(USER, PASSWORD), token_server=tokens)
    write_layout(root / "private", [busybox_layer(**{"etc/secret": b"classified\n"})], tag="v1", env=["PATH=/bin"])
    reg.push(root / "private", "v1", "private/app")
    yield reg
    reg.stop()


async def _import(client: ContreeAsyncClient, url: str, tag: str | None = None,
                  creds: tuple[str, str] | None = None) -> object:
    credentials = ImageImportRegistryCredentials(username=creds[0], password=creds[1]) if creds else None
    op_id = await client.import_image(ImageImportRegistry(url=url, credentials=credentials), tag=tag, timeout=120)
    return await client.wait_operation(op_id, timeout=120)


async def test_contree_client_imports_from_a_registry_and_runs_the_image(
        client: ContreeAsyncClient, raw: httpx.AsyncClient, registry: Registry) -> None:
    done = await _import(client, registry.url("e2e/app", "v1"), tag="e2e/app:v1")
    assert done.status.value == "SUCCESS", done.error
    assert done.result.tag == "e2e/app:v1" and done.result_image_uuid == done.result.image
    ran = await run(client, "tag:e2e/app:v1", "cat /etc/changed /etc/kept; ls /opt; test -e /etc/gone || "
                                              "echo gone; echo $GREETING")
    assert text(ran.metadata.result.stdout) == "new\nkept\nnew\ngone\nfrom-registry\n"

    events = (await raw.get(f"/v1/operations/{done.uuid}/events")).text
    assert '"phase":"download"' in events.replace(" ", "")
    assert f"resolved docker://{registry.host}/e2e/app:v1" in events


async def test_a_second_image_fetches_only_the_layers_it_does_not_share(
        client: ContreeAsyncClient, engine: Engine, registry: Registry) -> None:
    first = await _import(client, registry.url("e2e/app", "v1"))
    assert first.status.value == "SUCCESS", first.error
    app_blobs = dict(registry.blob_gets("e2e/app"))
    before = len(registry.blob_gets("e2e/other"))
    second = await _import(client, registry.url("e2e/other", "v1"), tag="other")
    assert second.status.value == "SUCCESS", second.error
    fetched = registry.blob_gets("e2e/other")[before:]
    image_a = engine.store.get_image(first.result.image)
    image_b = engine.store.get_image(second.result.image)
    assert image_a.layers[0] == image_b.layers[0]  # the base layer is stored once
    # the config and the new layer were downloaded; the base layer (the largest blob: busybox) was not
    base_digest = max(app_blobs, key=lambda d: app_blobs[d])
    assert len(fetched) == 2 and base_digest not in dict(fetched)
    assert sum(size for _, size in fetched) < app_blobs[base_digest] / 10
    ran = await run(client, "tag:other", "cat /etc/other /etc/changed; test -e /opt/new || echo no-new")
    assert text(ran.metadata.result.stdout) == "other image\nold\nno-new\n"


async def test_the_same_digest_again_is_the_same_image_without_a_download(
        client: ContreeAsyncClient, registry: Registry) -> None:
    first = await _import(client, registry.url("e2e/app", "v1"))
    assert first.status.value == "SUCCESS", first.error
    gets = len(registry.blob_gets())
    start = time.monotonic()
    again = await _import(client, registry.url("e2e/app", "v1"), tag="again")
    assert again.status.value == "SUCCESS" and again.result.image == first.result.image
    # the manifest and the config (resolve reads both, a few hundred bytes) were read, no layer
    assert [size < 4096 for _, size in registry.blob_gets()[gets:]] == [True]
    assert time.monotonic() - start < 5


async def test_credentials_go_through_the_token_flow(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                                     token_registry: Registry) -> None:
    done = await _import(client, token_registry.url("private/app", "v1"), tag="private", creds=(USER, PASSWORD))
    assert done.status.value == "SUCCESS", done.error
    assert PASSWORD not in (await raw.get(f"/v1/operations/{done.uuid}")).text
    ran = await run(client, "tag:private", "cat /etc/secret")
    assert text(ran.metadata.result.stdout) == "classified\n"

    wrong = await _import(client, token_registry.url("private/app", "v1"), creds=(USER, "nope"))
    assert wrong.status.value == "FAILED"
    assert wrong.error.startswith(f"authentication failed for {token_registry.host}: ")
    anonymous = await _import(client, token_registry.url("private/app", "v1"))
    assert anonymous.status.value == "FAILED"
    assert anonymous.error.startswith(f"authentication required for {token_registry.host}: ")


async def test_registry_errors_fail_the_operation_with_the_reason(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                                                  registry: Registry) -> None:
    missing = await _import(client, registry.url("e2e/app", "v404"))
    assert missing.status.value == "FAILED"
    assert missing.error.startswith(f"unknown repository or tag: docker://{registry.host}/e2e/app:v404: ")
    assert "has no tag 'v404' (its tags: v1)" in missing.error
    response = await raw.post("/v1/images/import", json={"registry": {"url": "docker://Bad/Name:x"}})
    assert response.status_code == 400 and "accepted forms" in response.text


def _sdk_oci(base_url: str, ref: str) -> tuple[str, str | None, str]:
    from contree_sdk import ContreeSync

    client = ContreeSync(base_url=base_url, token="local-test-token")
    image = client.images.oci(ref, timeout=120)
    ran = image.run(shell="cat /etc/changed; echo $GREETING").wait()
    return str(image.uuid), image.tag, ran.stdout


async def test_contree_sdk_images_oci_imports_from_the_registry(engine: Engine, registry: Registry, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("contree_sdk")
    monkeypatch.setenv("CONTREE_HOME", str(tmp_path))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server, task = await serve(create_app(engine), sockets=[sock])
    try:
        # what a user types; the SDK sends registry.url docker://127.0.0.1:PORT/e2e/app:v1 and that as the tag
        uuid, tag, stdout = await asyncio.to_thread(_sdk_oci, f"http://127.0.0.1:{port}", f"{registry.host}/e2e/app:v1")
    finally:
        await stop(server, task)
        sock.close()
    assert tag == f"{registry.host}/e2e/app:v1" and engine.store.image_by_tag(tag).uuid == uuid
    assert stdout == "new\nfrom-registry\n"


async def test_delete_cancels_an_import_mid_download_and_leaves_nothing(
        raw: httpx.AsyncClient, engine: Engine, registry: Registry, tmp_path: Path) -> None:
    write_layout(tmp_path / "big", [busybox_layer(), {"big": os.urandom(600_000)}], tag="v1")
    registry.push(tmp_path / "big", "v1", "e2e/stalls")
    proxy = await FaultProxy(registry.host, stall_blob_after=300_000).start()  # the 1 MB base layer stops midway
    try:
        response = await raw.post("/v1/images/import", json={"registry": {"url": proxy.url("e2e/stalls", "v1")}})
        op_id = response.json()["uuid"]
        async with asyncio.timeout(30):
            while not [p for p in (engine.state.root / "imports").glob("*/blob-*") if p.stat().st_size > 0]:
                await asyncio.sleep(0.05)  # a partial blob on disk: the download is under way
        assert (await raw.delete(f"/v1/operations/{op_id}")).status_code == 202
        status = (await raw.get(f"/v1/operations/{op_id}")).json()
    finally:
        await proxy.stop()
    assert status["status"] == "CANCELLED"
    assert not list((engine.state.root / "imports").glob("*"))
    assert set(os.listdir(engine.state.layers)) <= engine.store.referenced_layers()  # no orphan layer
