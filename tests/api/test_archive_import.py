"""Issue #11: `POST /v1/images/import` with `docker-archive:` and `oci-archive:` URLs (our offline extension
of registry.url), through the HTTP API of the real engine, waited for and run with contree-client."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from contree_client.httpx import ContreeAsyncClient

from tests.api.helpers import run, text
from tests.images.busybox_layouts import whiteout_layout
from tests.images.oci_build import skopeo_copy


@pytest.mark.parametrize("scheme, ref", [("docker-archive", "team/app:1"), ("oci-archive", "t1")])
async def test_an_archive_imports_through_the_api(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                                  tmp_path: Path, scheme: str, ref: str) -> None:
    whiteout_layout(tmp_path / "layout", env=["PATH=/bin", "GREETING=offline"])
    archive = tmp_path / "image.tar"
    skopeo_copy(f"oci:{tmp_path / 'layout'}:t1", f"{scheme}:{archive}:{ref}")
    url = f"{scheme}:{archive}:{ref}"
    response = await raw.post("/v1/images/import", json={"registry": {"url": url}, "tag": "offline:1"})
    assert response.status_code == 201, response.text
    done = await client.wait_operation(response.json()["uuid"], timeout=60)
    assert done.status.value == "SUCCESS", done.error
    assert done.result.tag == "offline:1" and done.metadata.registry.url == url

    script = "cat /etc/changed; ls /opt; test -e /etc/gone || echo gone; echo $GREETING"
    ran = await run(client, "tag:offline:1", script)
    assert text(ran.metadata.result.stdout) == "new\nnew\ngone\noffline\n"


async def test_a_missing_archive_fails_the_operation(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                                     tmp_path: Path) -> None:
    response = await raw.post("/v1/images/import",
                              json={"registry": {"url": f"docker-archive:{tmp_path / 'nope.tar'}"}})
    assert response.status_code == 201, response.text
    done = await client.wait_operation(response.json()["uuid"], timeout=60)
    assert done.status.value == "FAILED" and "nope.tar: no such file" in done.error
