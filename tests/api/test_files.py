"""Uploaded files: raw POST, lookups by sha256, listing, and their use in a run."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from contree_client.exceptions import BadRequestError, NotFoundError
from contree_client.httpx import ContreeAsyncClient
from contree_client.models import FileSpec

from contree_tui.engine.models import Image
from tests.api.helpers import run, text


async def test_upload_lookup_list_and_inject(client: ContreeAsyncClient, raw: httpx.AsyncClient,
                                            busybox: Image) -> None:
    data = b"hello from the host\n"
    digest = hashlib.sha256(data).hexdigest()
    assert not await client.check_file_exists(digest)
    with pytest.raises(NotFoundError):
        await client.get_file(digest)
    uploaded = await client.upload_file(data)
    assert uploaded.sha256 == digest and uploaded.size == len(data)
    assert await client.check_file_exists(digest)
    assert await client.check_file_exists(digest.upper())
    record = await client.get_file(digest)
    assert record.uuid == uploaded.uuid and record.created_at and record.updated_at
    again = await client.ensure_file(data)  # the client's dedup: found by sha256, not uploaded twice
    assert again.uuid == uploaded.uuid
    empty = await client.upload_file(b"")
    assert empty.size == 0
    listed = (await client.list_files()).files
    assert {f.uuid for f in listed} == {uploaded.uuid, empty.uuid}
    assert len((await client.list_files(limit=1)).files) == 1
    assert (await client.list_files(since="2999-01-01T00:00:00+00:00")).files == []
    op = await run(client, busybox.uuid, "cat /root/hello.txt; stat -c %a /root/hello.txt",
                   files={"/root/hello.txt": FileSpec(uuid=uploaded.uuid, mode="0600")})
    assert text(op.metadata.result.stdout) == "hello from the host\n600\n"
    assert op.metadata.files["/root/hello.txt"].mode == "0600"


async def test_bad_and_unknown_digests(client: ContreeAsyncClient, raw: httpx.AsyncClient, busybox: Image) -> None:
    # The spec lists 401/403/404 for GET /files/{sha256}: a digest that is not one names no file (contree-cli
    # uploads on a 404 and raises on anything else)
    for bad in ("abc", "g" * 64, "0" * 65):
        with pytest.raises(NotFoundError, match="not a sha256"):
            await client.get_file(bad)
        assert (await raw.head(f"/v1/files/{bad}")).status_code == 404
    with pytest.raises(BadRequestError):
        await client.list_files(limit=0)
    with pytest.raises(BadRequestError, match="no file"):  # a run naming a file nobody uploaded (spec: 400)
        await client.spawn_instance("true", busybox.uuid,
                                    files={"/x": FileSpec(uuid="00000000-0000-4000-8000-000000000000")})
