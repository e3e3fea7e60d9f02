"""Issue #11: `POST /v1/images/import` through the official clients, over the real engine.

contree-client imports an `oci:` layout (our offline extension of registry.url), waits as it does for
imports (polling GET), and sees SUCCESS, the result {image, tag}, and ImageImportMetadata with the password
masked; the imported image runs commands through the same client. contree-sdk's strict parser accepts the
operation too (its import_from with an OCIReference). Malformed requests are 400s that create nothing;
the events of an import are import_progress / import_log / completion; DELETE cancels an import.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from contree_client.httpx import ContreeAsyncClient
from contree_client.models import ImageImportRegistry, ImageImportRegistryCredentials

from contree_tui.engine.engine import Engine
from contree_tui.engine.http import create_app
from tests.api.conftest import serve, stop
from tests.api.helpers import run, text
from tests.images.busybox_layouts import whiteout_layout, zeros_layout


async def test_contree_client_imports_an_oci_layout_and_runs_it(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                                                tmp_path: Path) -> None:
    whiteout_layout(tmp_path / "layout", env=["PATH=/bin", "GREETING=hi"])
    registry = ImageImportRegistry(url=f"oci:{tmp_path / 'layout'}:t1",
                                   credentials=ImageImportRegistryCredentials(username="me", password="s3cret"))
    op_id = await client.import_image(registry, tag="layout:t1", timeout=120)
    done = await client.wait_operation(op_id, timeout=60)
    assert done.status.value == "SUCCESS", done.error
    assert done.kind == "image_import" and done.result.tag == "layout:t1" and done.result.image
    assert done.result_image_uuid == done.result.image and done.image_uuid is None
    assert done.metadata.registry.url == registry.url and done.metadata.tag == "layout:t1"
    assert done.metadata.registry.credentials.password == "<MASKED>" and done.metadata.timeout == 120

    script = "cat /etc/changed; ls /opt; test -e /etc/gone || echo gone; echo $GREETING"
    ran = await run(client, "tag:layout:t1", script)
    assert text(ran.metadata.result.stdout) == "new\nnew\ngone\nhi\n"

    listed = await client.list_operations(kind="image_import")
    assert [o.uuid for o in listed] == [op_id]
    response = await raw.get(f"/v1/operations/{op_id}")
    assert "s3cret" not in response.text
    events = await raw.get(f"/v1/operations/{op_id}/events")
    frames = [json.loads(line[6:]) for line in events.text.splitlines() if line.startswith("data: ")]
    types = [f["type"] for f in frames]
    assert types[-1] == "completion" and frames[-1]["data"]["result_image_uuid"] == done.result.image
    assert {"import_progress", "import_log"} <= set(types)
    assert all(f["spid"] == 0 for f in frames if f["type"] != "completion")
    phases = [f["data"]["phase"] for f in frames if f["type"] == "import_progress"]
    assert phases[0] == "resolve" and phases[-1] == "commit" and {"download", "extract"} <= set(phases)
    logs = [f["data"]["message"] for f in frames if f["type"] == "import_log"]
    assert "tagged layout:t1" in logs


@pytest.mark.parametrize("body, field", [
    ({"registry": {"url": ""}}, "registry.url"),
    ({"registry": "docker://x"}, "registry"),
    ({"registry": {"url": "oci:/x"}, "tag": "no spaces"}, "tag"),
    ({"registry": {"url": "oci:/x"}, "timeout": -1}, "timeout"),
    ({"registry": {"url": "oci:/x", "credentials": {"password": "p"}}}, "credentials"),
])
async def test_malformed_import_requests_are_400(raw: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    response = await raw.post("/v1/images/import", json=body)
    assert response.status_code == 400, response.text
    assert field in response.text
    assert (await raw.get("/v1/operations")).json() == []


async def test_delete_cancels_an_import(raw: httpx.AsyncClient, engine: Engine, tmp_path: Path) -> None:
    layout = zeros_layout(tmp_path / "big")
    response = await raw.post("/v1/images/import", json={"registry": {"url": f"oci:{layout}:big"}})
    assert response.status_code == 201 and response.headers["location"].endswith(response.json()["uuid"])
    op_id = response.json()["uuid"]
    async with asyncio.timeout(30):
        while not any(e.type == "import_progress" and e.data["phase"] == "extract"
                      for e in engine.store.events(op_id)):
            await asyncio.sleep(0.05)
    assert (await raw.delete(f"/v1/operations/{op_id}")).status_code == 202
    status = (await raw.get(f"/v1/operations/{op_id}")).json()
    assert status["status"] == "CANCELLED" and status["result"] == {"image": None, "tag": None}
    assert (await raw.delete(f"/v1/operations/{op_id}")).status_code == 409
    assert not list((engine.state.root / "imports").glob("*"))
    # A cancelled import keeps its events, as a cancelled instance does (tests/api/test_events.py): the spec's
    # "events are dropped for CANCELLED operations" is not followed for either kind (a client that
    # cancelled can still read how far it got and why it ended).
    events = await raw.get(f"/v1/operations/{op_id}/events")
    assert events.status_code == 200
    frames = [json.loads(line[len("data: "):]) for line in events.text.splitlines() if line.startswith("data: ")]
    assert any(f["type"] == "import_progress" and f["data"]["phase"] == "extract" for f in frames)
    assert frames[-1]["type"] == "completion" and frames[-1]["data"]["status"] == "CANCELLED"


def _sdk_import(base_url: str, url: str) -> tuple[str, str | None]:
    from contree_sdk import ContreeSync
    from contree_sdk.utils.oci import OCIReference

    client = ContreeSync(base_url=base_url, token="local-test-token")
    image = client.images.import_from(OCIReference(url=url, tag="sdk:t1"), timeout=60)
    return str(image.uuid), image.tag


async def test_contree_sdk_parses_the_import_operation(engine: Engine, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("contree_sdk")
    monkeypatch.setenv("CONTREE_HOME", str(tmp_path))
    whiteout_layout(tmp_path / "layout")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server, task = await serve(create_app(engine), sockets=[sock])
    try:
        uuid, tag = await asyncio.to_thread(_sdk_import, f"http://127.0.0.1:{port}", f"oci:{tmp_path / 'layout'}:t1")
    finally:
        await stop(server, task)
        sock.close()
    assert engine.store.image_by_tag("sdk:t1").uuid == uuid and tag == "sdk:t1"


async def test_token_clients_over_tcp_may_not_import_host_paths(engine: Engine, tmp_path: Path) -> None:
    """SECURITY.md: whoever holds the TCP token may use the engine, not read host files through it; an
    `oci:`/`rootfs:` path would copy any directory or tarball root can read into an image they can read."""
    from contree_tui.engine.serve import TokenOnTcp

    whiteout_layout(tmp_path / "layout")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server, task = await serve(TokenOnTcp(create_app(engine), "tok"), sockets=[sock])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     headers={"Authorization": "Bearer tok"}) as http:
            for url in (f"oci:{tmp_path / 'layout'}:t1", "rootfs:/etc", "docker-archive:/x.tar",
                        "oci-archive:/x.tar"):
                response = await http.post("/v1/images/import", json={"registry": {"url": url}})
                assert response.status_code == 403 and "Unix socket" in response.text, (url, response.text)
            assert (await http.get("/v1/operations")).json() == []
    finally:
        await stop(server, task)
        sock.close()
    assert engine.store.list_images() == []
