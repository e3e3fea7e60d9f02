"""Images through the API: listing filters and pages, tags, and the import that is not here yet."""

from __future__ import annotations

import time

import httpx
import pytest
from contree_client.exceptions import BadRequestError, NotFoundError
from contree_client.httpx import ContreeAsyncClient

from contree_tui.engine.engine import Engine
from contree_tui.engine.models import Image
from tests.api.helpers import run

MISSING = "00000000-0000-4000-8000-000000000000"


async def test_list_filters_and_pages(client: ContreeAsyncClient, raw: httpx.AsyncClient, engine: Engine,
                                      busybox: Image) -> None:
    before = time.time()
    child = (await run(client, busybox.uuid, "echo x > /x")).result_image_uuid
    everything = (await client.list_images()).images
    assert [i.uuid for i in everything] == [busybox.uuid, child]
    assert everything[0].tag == "busybox:latest" and everything[0].operation_uuid is None
    assert everything[1].tag is None and everything[1].operation_uuid
    assert [i.uuid for i in (await client.list_images(tagged=True)).images] == [busybox.uuid]
    assert [i.uuid for i in (await client.list_images(tag="busy")).images] == [busybox.uuid]
    assert (await client.list_images(tag="alpine")).images == []
    assert [i.uuid for i in (await client.list_images(uuid=child)).images] == [child]
    assert [i.uuid for i in (await client.list_images(limit=1, offset=1)).images] == [child]
    assert [i.uuid for i in (await client.list_images(since=before - 0.001)).images] == [child]
    assert [i.uuid for i in (await client.list_images(since="1h")).images] == [busybox.uuid, child]
    assert (await client.list_images(until="1h")).images == []
    iso = (await client.list_images(since="2000-01-01T00:00:00Z")).images
    assert len(iso) == 2
    # contree-sdk sends an undocumented `kind` (1 imported, 0 made by instances); `?tagged` alone means tagged.
    answer = await raw.get("/v1/images", params={"kind": "1", "tagged": ""})
    assert answer.status_code == 200 and [i["uuid"] for i in answer.json()["images"]] == [busybox.uuid]
    answer = await raw.get("/v1/images", params={"kind": "1"})
    assert [i["uuid"] for i in answer.json()["images"]] == [busybox.uuid]
    answer = await raw.get("/v1/images", params={"kind": "0"})
    assert [i["uuid"] for i in answer.json()["images"]] == [child]
    answer = await raw.get("/v1/images", params={"kind": "other"})
    assert [i["uuid"] for i in answer.json()["images"]] == [busybox.uuid, child]
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"offset": "-1"}, {"limit": "ten"}, {"since": "yesterday"},
                {"uuid": "not-a-uuid"}, {"tagged": "maybe"}):
        with pytest.raises(BadRequestError) as info:
            await client.call(_get("/images", bad))
        assert info.value.status == 400 and isinstance(info.value.error, str), bad


def _get(path: str, query: dict[str, str]) -> object:
    from contree_client.runtime import RequestSpec

    return RequestSpec(method="GET", path=path, idempotent=True, query=query)


async def test_tags_move_and_go(client: ContreeAsyncClient, raw: httpx.AsyncClient, busybox: Image) -> None:
    child = (await run(client, busybox.uuid, "echo x > /x")).result_image_uuid
    tagged = await client.update_image_tag(child, "mine:v1")
    assert tagged.uuid == child and tagged.tag == "mine:v1"
    assert await client.inspect_find_image_by_tag("mine:v1") == child
    await client.update_image_tag(busybox.uuid, "mine:v1")  # a tag is unique: it moves
    assert await client.inspect_find_image_by_tag("mine:v1") == busybox.uuid
    await client.delete_image_tag(busybox.uuid, tag="mine:v1")
    with pytest.raises(NotFoundError):
        await client.inspect_find_image_by_tag("mine:v1")
    await client.update_image_tag(child, "other")
    await client.delete_image_tag(child)  # all tags
    assert (await client.inspect_image(child)).tag is None
    with pytest.raises(NotFoundError):
        await client.delete_image_tag(child, tag="never-set")
    with pytest.raises(NotFoundError):
        await client.update_image_tag(MISSING, "x")
    with pytest.raises(NotFoundError):
        await client.delete_image_tag(MISSING)
    with pytest.raises(BadRequestError):
        await client.update_image_tag(child, "bad tag!")
    with pytest.raises(BadRequestError):
        await client.update_image_tag("not-a-uuid", "x")
    for body in (b"{not json", b"[1]", b'{"tag": 5}', b"", b'{"tag": NaN}', b"\xff\xfe"):
        answer = await raw.patch(f"/v1/images/{child}/tag", content=body)
        assert answer.status_code == 400, body
        assert answer.json()["status"] == 400 and answer.json()["error"]
    tolerant = await raw.patch(f"/v1/images/{child}/tag", json={"tag": "ok", "unknown": {"fields": True}})
    assert tolerant.status_code == 200 and tolerant.json()["tag"] == "ok"


async def test_import_requests_that_are_not_json_objects_are_400(raw: httpx.AsyncClient) -> None:
    assert (await raw.post("/v1/images/import", content=b"{")).status_code == 400
    assert (await raw.post("/v1/images/import", json={"tag": "x"})).status_code == 400
    assert (await raw.get("/v1/operations")).json() == []


async def test_an_image_with_two_tags_is_listed_once_per_tag(client: ContreeAsyncClient, busybox: Image) -> None:
    """The wire's Image has one `tag`: an image tagged twice is two rows (clients fold them by uuid), or a
    listing would hide a tag, e.g. the one a re-import of the same manifest adds."""
    child = (await run(client, busybox.uuid, "echo y > /y")).result_image_uuid
    await client.update_image_tag(child, "two:a")
    await client.update_image_tag(child, "two:b")
    rows = [(i.uuid, i.tag) for i in (await client.list_images(tagged=True)).images if i.uuid == child]
    assert rows == [(child, "two:a"), (child, "two:b")]
    assert [(i.uuid, i.tag) for i in (await client.list_images(tag="two:b")).images] == [(child, "two:b")]
    assert [i.tag for i in (await client.list_images(uuid=child)).images] == ["two:a", "two:b"]
