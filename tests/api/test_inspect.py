"""Reading images through the API: tag redirects, metadata, download, archive, list, grep — all confined."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import httpx
import pytest
from contree_client.exceptions import BadRequestError, NotFoundError, UnprocessableEntityError
from contree_client.httpx import ContreeAsyncClient

from contree_tui.engine.models import Image
from tests.api.helpers import run

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def host_secret(tmp_path: Path) -> Path:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host only secret\n")
    return secret


@pytest.fixture
async def tree(client: ContreeAsyncClient, busybox: Image, host_secret: Path) -> str:
    script = ("mkdir -p /data/sub && echo one > /data/a.txt && echo two > /data/sub/b.conf"
              f" && ln -s {host_secret} /data/abs-link && ln -s ../../../../../..{host_secret} /data/rel-link"
              " && ln -s / /data/root-link && printf 'x\\0y' > /data/blob.bin")
    return (await run(client, busybox.uuid, script)).result_image_uuid


async def test_tag_lookup_redirects(client: ContreeAsyncClient, raw: httpx.AsyncClient, busybox: Image) -> None:
    assert await client.inspect_find_image_by_tag("busybox:latest") == busybox.uuid
    found = await raw.get("/v1/inspect/", params={"tag": "busybox:latest"})
    assert found.status_code == 302 and found.headers["location"] == f"/v1/inspect/{busybox.uuid}/"
    followed = await raw.get("/v1/inspect/", params={"tag": "busybox:latest"}, follow_redirects=True)
    assert followed.json()["uuid"] == busybox.uuid and followed.json()["tag"] == "busybox:latest"
    with pytest.raises(NotFoundError):
        await client.inspect_find_image_by_tag("no-such:tag")
    assert (await raw.get("/v1/inspect/")).status_code == 400
    bare = await raw.get("/v1/inspect", params={"tag": "busybox:latest"})
    assert bare.status_code == 307 and bare.headers["location"] == "/v1/inspect/?tag=busybox%3Alatest"
    one = await raw.get(f"/v1/inspect/{busybox.uuid}")
    assert one.status_code == 307 and one.headers["location"] == f"/v1/inspect/{busybox.uuid}/"
    image = await client.inspect_image(busybox.uuid)
    assert image.uuid == busybox.uuid and image.created_at
    with pytest.raises(NotFoundError):
        await client.inspect_image(MISSING)
    with pytest.raises(BadRequestError):
        await client.inspect_image("not-a-uuid")


async def test_download(client: ContreeAsyncClient, raw: httpx.AsyncClient, tree: str) -> None:
    assert await client.inspect_image_download(tree, "/data/a.txt") == b"one\n"
    assert b"".join([c async for c in client.inspect_image_download_stream(tree, "/data/blob.bin")]) == b"x\0y"
    text = await raw.get(f"/v1/inspect/{tree}/download", params={"path": "/data/a.txt", "text": ""})
    assert text.headers["content-type"].startswith("text/plain") and text.text == "one\n"
    head = await raw.head(f"/v1/inspect/{tree}/download", params={"path": "/data/a.txt"})
    assert head.status_code == 200 and head.headers["content-length"] == "4" and head.content == b""
    assert await client.check_image_file(tree, "/data/a.txt")
    assert not await client.check_image_file(tree, "/data/none")
    with pytest.raises(UnprocessableEntityError):
        await client.inspect_image_download(tree, "/data")
    assert (await raw.head(f"/v1/inspect/{tree}/download", params={"path": "/data"})).status_code == 422
    with pytest.raises(NotFoundError):
        await client.inspect_image_download(tree, "/data/none")
    with pytest.raises(NotFoundError):
        await client.inspect_image_download(MISSING, "/etc/passwd")
    with pytest.raises(BadRequestError):
        await client.inspect_image_download(tree, "data/a.txt")
    assert (await raw.get(f"/v1/inspect/{tree}/download")).status_code == 400


async def test_paths_and_links_never_leave_the_image(client: ContreeAsyncClient, raw: httpx.AsyncClient, tree: str,
                                                    host_secret: Path) -> None:
    for path in (str(host_secret), f"/../../../..{host_secret}", "/data/abs-link", "/data/rel-link",
                 f"/data/root-link{host_secret}", f"/data/../../..{host_secret}"):
        with pytest.raises(NotFoundError):
            await client.inspect_image_download(tree, path)
        assert not await client.check_image_file(tree, path)
    for path in (str(host_secret.parent), f"/../../..{host_secret.parent}", f"/data/root-link{host_secret.parent}"):
        with pytest.raises(NotFoundError):
            await client.inspect_image_list(tree, path)
        assert not await client.check_image_archive(tree, path)
    # a link is archived as the link it is, never as the host file it names
    body = b"".join([c async for c in client.inspect_image_archive(tree, "/data/abs-link")])
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        member = archive.getmember("abs-link")
        assert member.issym() and member.linkname == str(host_secret)
    listing = await client.inspect_image_list(tree, "/data/../../../data")
    assert listing.path == "/data"
    found = await client.inspect_image_grep(tree, "host only", path=["/", "/data/root-link/"])
    assert found.matches == []


async def test_archive_plain_and_gzip(client: ContreeAsyncClient, raw: httpx.AsyncClient, tree: str) -> None:
    plain = await raw.get(f"/v1/inspect/{tree}/archive", params={"path": "/data/sub"},
                          headers={"accept-encoding": "identity"})
    assert plain.headers["content-type"] == "application/x-tar" and "content-encoding" not in plain.headers
    assert plain.headers["content-disposition"] == 'attachment; filename="data_sub.tar"'
    with tarfile.open(fileobj=io.BytesIO(plain.content)) as archive:
        assert sorted(archive.getnames()) == ["sub", "sub/b.conf"]
    async with raw.stream("GET", f"/v1/inspect/{tree}/archive", params={"path": "/data/a.txt"},
                          headers={"accept-encoding": "gzip"}) as response:
        assert response.headers["content-encoding"] == "gzip"
        wire = b"".join([c async for c in response.aiter_raw()])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(wire))) as archive:
        assert archive.extractfile("a.txt").read() == b"one\n"
    compressed = b"".join([c async for c in client.inspect_image_archive(tree, "/data", compressed=True)])
    assert compressed[:2] == b"\x1f\x8b"  # what `contree export` writes to a .tar.gz as is
    decoded = b"".join([c async for c in client.inspect_image_archive(tree, "/data")])
    with tarfile.open(fileobj=io.BytesIO(decoded)) as archive:
        assert "data/sub/b.conf" in archive.getnames()
    assert await client.check_image_archive(tree, "/data")
    assert not await client.check_image_archive(tree, "/nothing")
    head = await raw.head(f"/v1/inspect/{tree}/archive", params={"path": "/"})
    assert head.status_code == 200 and head.headers["content-disposition"] == 'attachment; filename="root.tar"'
    assert (await raw.get(f"/v1/inspect/{tree}/archive", params={"path": "/nothing"})).status_code == 404


async def test_list_json_and_text(client: ContreeAsyncClient, raw: httpx.AsyncClient, tree: str) -> None:
    listing = await client.inspect_image_list(tree, "/data")
    items = {f.path: f for f in listing.files}
    assert set(items) == {"a.txt", "sub", "abs-link", "rel-link", "root-link", "blob.bin"}
    assert items["sub"].is_dir and items["a.txt"].is_regular and items["a.txt"].size == 4
    assert items["root-link"].is_symlink and items["root-link"].symlink_to == "/"
    assert items["a.txt"].owner == "root" and items["a.txt"].uid == 0
    text = await raw.get(f"/v1/inspect/{tree}/list", params={"path": "/data", "text": "1"})
    lines = text.text.splitlines()
    assert text.headers["content-type"].startswith("text/plain") and lines[0].startswith("total ")
    assert any(line.startswith("drwxr-xr-x") and line.endswith(" sub") for line in lines)
    assert any(line.startswith("-rw-r--r--") and "    4.00 " in line and line.endswith(" a.txt") for line in lines)
    assert any(line.startswith("lrwxrwxrwx") and line.endswith("root-link -> /") for line in lines)
    with pytest.raises(UnprocessableEntityError):
        await client.inspect_image_list(tree, "/data/a.txt")
    with pytest.raises(NotFoundError):
        await client.inspect_image_list(tree, "/missing")
    assert (await raw.get(f"/v1/inspect/{tree}/list")).status_code == 400


async def test_grep(client: ContreeAsyncClient, raw: httpx.AsyncClient, tree: str) -> None:
    found = await client.inspect_image_grep(tree, ["one", "TWO"], path="/data", case="insensitive")
    assert [(m.path, m.line_number, m.type) for m in found.matches] == [("/data/a.txt", 1, "match"),
                                                                      ("/data/sub/b.conf", 1, "match")]
    assert found.matches[0].submatches[0].text == "one" and found.path == "/data" and not found.truncated
    conf = await client.inspect_image_grep(tree, "o", path=["/data"], glob=["*.conf"])
    assert [m.path for m in conf.matches] == ["/data/sub/b.conf"]
    capped = await client.inspect_image_grep(tree, ".", path="/data", max_total=1)
    assert len(capped.matches) == 1 and capped.truncated
    context = await client.inspect_image_grep(tree, "root", path="/etc/passwd", before=0, after=1, max_count=1)
    assert [m.type for m in context.matches] == ["match", "context"]
    url = f"/v1/inspect/{tree}/grep"
    for params in ({}, {"pattern": "("}, {"pattern": "x", "path": "relative"}, {"pattern": "x", "case": "odd"},
                   {"pattern": "x", "before": "51"}, {"pattern": "x", "max_total": "0"},
                   {"pattern": "x", "max_count": "10001"}, {"pattern": ["x"] * 17}, {"pattern": "x" * 1025}):
        answer = await raw.get(url, params=params)
        assert answer.status_code == 400, params
    with pytest.raises(NotFoundError):
        await client.inspect_image_grep(tree, "x", path="/missing")
    with pytest.raises(NotFoundError):
        await client.inspect_image_grep(MISSING, "x")
