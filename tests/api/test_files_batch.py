"""Our extension POST /v1/x/files/batch: many small files in one request, each recorded as a single upload
of the same bytes would be; a broken body is a 400 that keeps the files written before the break."""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
from collections.abc import AsyncIterator

import httpx
from contree_client.httpx import ContreeAsyncClient
from contree_client.models import FileSpec

from contree_tui.engine.engine import Engine
from contree_tui.engine.file_store import BATCH_MAX_FILE, BATCH_MAX_FILES
from contree_tui.engine.models import Image
from tests.api.helpers import run, text


def frames(*files: bytes) -> bytes:
    return b"".join(struct.pack(">Q", len(data)) + data for data in files)


def blob_names(engine: Engine) -> set[str]:
    return set(os.listdir(engine.files._blobs_dir))


async def test_a_batch_is_recorded_like_single_uploads_and_runs_see_it(
        client: ContreeAsyncClient, raw: httpx.AsyncClient, busybox: Image) -> None:
    contents = [f"file {i} {os.urandom(4).hex()}\n".encode() for i in range(600)]
    contents += [b"", contents[0], os.urandom(300_000)]  # empty, a duplicate, one past the 256-file write step
    single = await client.upload_file(contents[5])  # known already: the batch gives back the same uuid
    response = await raw.post("/v1/x/files/batch", content=frames(*contents))
    assert response.status_code == 201, response.text
    files = response.json()["files"]
    assert [f["sha256"] for f in files] == [hashlib.sha256(c).hexdigest() for c in contents]
    assert [f["size"] for f in files] == [len(c) for c in contents]
    assert files[5]["uuid"] == single.uuid and files[601]["uuid"] == files[0]["uuid"]
    assert len({f["uuid"] for f in files}) == len(contents) - 1
    for i in (0, 599, 600, 602):
        record = await client.get_file(files[i]["sha256"])
        assert (record.uuid, record.size) == (files[i]["uuid"], len(contents[i]))
    op = await run(client, busybox.uuid, "cat /a; sha256sum /b | cut -c1-64; wc -c < /c",
                   files={"/a": FileSpec(uuid=files[599]["uuid"], mode="0644"),
                          "/b": FileSpec(uuid=files[602]["uuid"], mode="0644"),
                          "/c": FileSpec(uuid=files[600]["uuid"], mode="0644")})
    assert text(op.metadata.result.stdout) == (contents[599].decode() + hashlib.sha256(contents[602]).hexdigest()
                                               + "\n0\n")
    empty = await raw.post("/v1/x/files/batch", content=b"")
    assert (empty.status_code, empty.json()) == (201, {"files": []})


async def test_a_body_that_breaks_off_keeps_the_whole_files_before_it(
        client: ContreeAsyncClient, raw: httpx.AsyncClient, engine: Engine) -> None:
    whole = [f"whole {i} {os.urandom(4).hex()}".encode() for i in range(300)]
    cut = frames(*whole, b"x" * 100)[:-40]

    async def body() -> AsyncIterator[bytes]:  # the whole files first, then (later) the broken one
        yield cut[:-68]
        await asyncio.sleep(0.2)
        yield cut[-68:]

    before = blob_names(engine)
    response = await raw.post("/v1/x/files/batch", content=body())
    assert response.status_code == 400
    assert response.json()["error"] == "batch upload: the body ends inside file 300 (60 of its 100 bytes)"
    # what was written before the break (whole write steps: how many depends on how the body arrived in
    # chunks) is recorded, each blob with its row; nothing half-written, no temp file left
    new = blob_names(engine) - before
    assert not [name for name in new if name.startswith(".")], new
    recorded = [await client.check_file_exists(hashlib.sha256(c).hexdigest()) for c in whole]
    kept = recorded.count(True)
    assert recorded == [True] * kept + [False] * (300 - kept), "a prefix of the body"
    assert new == {hashlib.sha256(c).hexdigest() for c in whole[:kept]}
    assert kept >= 256, "the first chunk held 300 whole files: at least one write step happened"

    header_cut = await raw.post("/v1/x/files/batch", content=frames(b"abc") + b"\0\0")
    assert header_cut.status_code == 400 and "inside the header of file 1 (2 of 8 bytes)" in header_cut.text


async def test_caps_on_file_size_and_count(raw: httpx.AsyncClient) -> None:
    too_big = await raw.post("/v1/x/files/batch", content=struct.pack(">Q", BATCH_MAX_FILE + 1) + b"x")
    assert too_big.status_code == 400 and "file 0 is" in too_big.json()["error"]
    huge_claim = await raw.post("/v1/x/files/batch", content=struct.pack(">Q", 1 << 62))
    assert huge_claim.status_code == 400
    too_many = await raw.post("/v1/x/files/batch", content=frames(*[b""] * (BATCH_MAX_FILES + 1)))
    assert too_many.status_code == 400
    assert too_many.json()["error"] == f"batch upload: more than {BATCH_MAX_FILES} files in one request"
