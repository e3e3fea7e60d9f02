"""Request bodies (issue #10, item 9): uploads stream to disk, JSON bodies are capped (413), unknown spawn
fields are not stored, and GET /operations never parses request blobs."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from contree_tui.engine.engine import Engine, EngineConfig
from contree_tui.engine.models import Image
from tests.security.limits_helpers import api_client, peak_rss_reset, rss_kib

MiB = 1 << 20


async def chunks(total: int, size: int = MiB) -> AsyncIterator[bytes]:
    block = b"\xa5" * size
    for _ in range(total // size):
        yield block


async def test_300_mb_upload_is_streamed_with_bounded_rss(engine: Engine) -> None:
    # Before: the route read the whole body into memory (engine RSS 676 MB for this upload).
    total = 300 * MiB
    async with api_client(engine) as http:
        peak_rss_reset()
        before = rss_kib("VmRSS")
        response = await http.post("/v1/files", content=chunks(total))
        peak = rss_kib("VmHWM")
    assert response.status_code == 201, response.text
    body = response.json()
    expected = hashlib.sha256()
    for _ in range(total // MiB):
        expected.update(b"\xa5" * MiB)
    assert body["size"] == total and body["sha256"] == expected.hexdigest()
    assert os.path.getsize(engine.state.blobs / body["sha256"]) == total
    assert (peak - before) * 1024 < 64 * MiB, f"peak RSS grew by {(peak - before) >> 10} MiB"


async def test_upload_past_the_limit_is_413_and_leaves_nothing(open_engine: Callable[..., Awaitable[Engine]]) -> None:
    engine = await open_engine(EngineConfig(max_upload_bytes=2 * MiB))
    async with api_client(engine) as http:
        declared = await http.post("/v1/files", content=b"x" * (3 * MiB))
        streamed = await http.post("/v1/files", content=chunks(8 * MiB, 256 << 10))  # chunked: no length
        fits = await http.post("/v1/files", content=b"y" * MiB)
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["status"] == 413 and "limit" in response.json()["error"]
    assert fits.status_code == 201
    assert sorted(os.listdir(engine.state.blobs)) == [fits.json()["sha256"]]


async def test_50_mb_json_body_is_413(engine: Engine, busybox: Image) -> None:
    body = {"image": busybox.uuid, "command": "true", "junk": "x" * (50 * MiB)}
    async with api_client(engine) as http:
        response = await http.post("/v1/instances", content=json.dumps(body))
        listed = await http.get("/v1/operations")
    assert response.status_code == 413 and response.json()["status"] == 413
    assert listed.json() == []


async def test_unknown_fields_are_not_stored(engine: Engine, busybox: Image) -> None:
    body = {"image": busybox.uuid, "command": "true", "junk": "x" * MiB, "stdin": {"value": "", "junk": "y" * 1000},
            "resources_limits": {"max_layer_bytes": MiB, "junk": 1}, "networking": {"enabled": False, "junk": 2}}
    async with api_client(engine) as http:
        response = await http.post("/v1/instances", content=json.dumps(body))
        assert response.status_code == 201, response.text
        op = await engine.wait(response.json()["uuid"])
    assert op.status.value == "SUCCESS"
    (stored,) = engine.store.db.execute("SELECT request FROM operations WHERE uuid=?", (op.uuid,)).fetchone()
    assert len(stored) < 1000 and "junk" not in stored
    assert json.loads(stored)["resources_limits"] == {"max_layer_bytes": MiB}


async def test_operation_list_does_not_read_request_blobs(engine: Engine, busybox: Image) -> None:
    # Requests that are legitimately big (3 MB of stdin each) must not slow the list: it reads summary columns.
    async with api_client(engine) as http:
        for _ in range(10):
            await engine.run({"image": busybox.uuid, "command": "true", "disposable": True})
        started = time.perf_counter()
        for _ in range(5):
            assert len((await http.get("/v1/operations")).json()) == 10
        small = (time.perf_counter() - started) / 5
        for _ in range(10):
            await engine.run({"image": busybox.uuid, "command": "cat >/dev/null", "shell": True, "disposable": True,
                              "stdin": {"value": "z" * (3 * MiB)}})
        started = time.perf_counter()
        for _ in range(5):
            assert len((await http.get("/v1/operations")).json()) == 20
        big = (time.perf_counter() - started) / 5
    # Parsing 30 MB of request JSON took ~0.2 s a list here; the summary list of 20 rows takes a few ms.
    assert big < 3 * small + 0.02, f"list with big requests {big * 1000:.1f} ms vs {small * 1000:.1f} ms"


async def test_max_layer_bytes_past_the_engine_maximum_is_400(engine: Engine, busybox: Image) -> None:
    body = {"image": busybox.uuid, "command": "true", "resources_limits": {"max_layer_bytes": 10**18}}
    async with api_client(engine) as http:
        response = await http.post("/v1/instances", json=body)
    assert response.status_code == 400
    assert "resources_limits.max_layer_bytes" in response.json()["error"]
